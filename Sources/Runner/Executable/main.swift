import SSLCommandLine

SSLRun.main()
