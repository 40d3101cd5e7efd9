/// The cross-process reductions tasks and the trainer use. Every reduction a task needs goes
/// through this interface, so data-parallel training plugs in without touching the tasks.
public protocol Collective: AnyObject {
    /// This process's index, `0..<worldSize`.
    var rank: Int { get }
    /// The number of processes.
    var worldSize: Int { get }
    /// Replaces `tensor`'s elements with their sum over all processes.
    func allReduceSum(_ tensor: Tensor)
    /// Every process's `tensor` concatenated along axis 0 in rank order (all shapes equal).
    func allGather(_ tensor: Tensor) -> Tensor
}

extension Collective {
    /// Replaces `tensor`'s elements with their mean over all processes.
    public func allReduceMean(_ tensor: Tensor) {
        allReduceSum(tensor)
        if worldSize > 1 { tensor.scaleInPlace(by: 1 / Float(worldSize)) }
    }
}

/// The collective of a run with one process: every reduction is the identity.
public final class SingleProcessCollective: Collective {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public func allReduceSum(_ tensor: Tensor) {}
    public func allGather(_ tensor: Tensor) -> Tensor { tensor }
}
