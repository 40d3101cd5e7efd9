import DenseCLTask
import SSLCommandLine
import SSLCore
import SSLPlugins

// `ssl-run` with one more task: the only line a new plugin needs.
var registry = TaskRegistry.builtIn
registry.register(DenseCLTask.self)
SSLRun.main(registry: registry)
