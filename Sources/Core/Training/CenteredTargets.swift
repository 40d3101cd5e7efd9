/// Teacher targets with centring and sharpening, as DINO computes them: probabilities
/// `softmax((t − c) / τ_teacher)` with a centre `c` that follows an EMA of the teacher's raw
/// outputs (spec §2.3). SelfPatch uses a second instance for its patch-level logits.
public final class CenteredTargets {
    /// The centre, `[1, outputDimension]`.
    public let center: Tensor
    /// The EMA momentum of the centre (0.9 in DINO).
    public let momentum: Double

    public init(outputDimension: Int, momentum: Double) {
        center = Tensor.zeros([1, outputDimension])
        self.momentum = momentum
    }

    /// The sharpened, centred probabilities of `teacherLogits` (`[rows, outputDimension]`),
    /// as constants.
    public func targets(_ teacherLogits: Tensor, temperature: Double) -> Tensor {
        GradientMode.withoutGradient { (teacherLogits - center).softmax(scale: Float(1 / temperature)) }
    }

    /// Moves the centre toward the mean row of `teacherLogits` over all processes:
    /// `c ← m·c + (1 − m)·Σ rows / (rows · worldSize)`.
    public func update(with teacherLogits: Tensor, collective: Collective) {
        update(with: [teacherLogits], collective: collective)
    }

    /// Moves the centre toward the mean row of all `blocks` together (each `[rows, K]`), so
    /// that every row counts once whatever block it is in (SelfPatch's token-weighted patch
    /// centre).
    public func update(with blocks: [Tensor], collective: Collective) {
        GradientMode.withoutGradient {
            var sums = Tensor.zeros(center.shape)
            var rows = 0
            for block in blocks {
                sums = sums + block.detached().sum(axes: [0], keepingDimensions: true)
                rows += block.shape[0]
            }
            collective.allReduceSum(sums)
            let mean = sums / Float(rows * collective.worldSize)
            center.assign(center * Float(momentum) + mean * Float(1 - momentum))
        }
    }
}

extension Tensor {
    /// The mean over rows of the row-wise soft cross-entropy between `targets` and
    /// `self / temperature`: one DINO loss term.
    public func distillationLoss(targets: Tensor, studentTemperature: Double) -> Tensor {
        softCrossEntropy(targets: targets, temperature: Float(studentTemperature)).mean()
    }
}
