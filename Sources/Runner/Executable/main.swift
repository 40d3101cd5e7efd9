import SSLCommandLine
import SSLCore

BLAS.restartWithNativeKernelsIfNeeded()
SSLRun.main()
