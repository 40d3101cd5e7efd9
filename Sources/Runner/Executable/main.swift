import SSLCommandLine
import SSLPlugins

SSLRun.main(registry: .builtIn)
