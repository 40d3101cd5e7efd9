import SSLCommandLine
import SSLCore
import SSLPlugins
import SimSiamTask

// `ssl-run` with one more task: the only line a new plugin needs.
var registry = TaskRegistry.builtIn
registry.register(SimSiamTask.self)
SSLRun.main(registry: registry)
