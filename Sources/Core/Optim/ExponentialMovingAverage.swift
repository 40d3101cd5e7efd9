import CKernels

/// Updates a teacher as an exponential moving average of a student:
/// `θ_teacher ← m·θ_teacher + (1 − m)·θ_student` for every parameter, matched by name.
/// Buffers (e.g. BatchNorm running statistics) are not averaged.
public enum ExponentialMovingAverage {
    public static func update(teacher: Module, student: Module, momentum: Double) {
        let source = Dictionary(uniqueKeysWithValues: student.namedParameters().map { ($0.name, $0.tensor) })
        let m = Float(momentum), complement = Float(1 - momentum)
        for (name, target) in teacher.namedParameters() {
            guard let value = source[name] else {
                preconditionFailure("EMA: the student has no parameter '\(name)' that the teacher has.")
            }
            precondition(value.shape == target.shape, "EMA: '\(name)' is \(value.shape) in the student, \(target.shape) in the teacher.")
            let t = target.storage.base, s = value.storage.base
            let pointers = UncheckedSendable((t, s))
            Parallel.forEachChunk(of: target.count, minimumChunk: 1 << 17) { _, range in
                let (t, s) = pointers.value
                ssl_moving_average_update(t + range.lowerBound, s + range.lowerBound, Int64(range.count), m, complement)
            }
        }
    }
}
