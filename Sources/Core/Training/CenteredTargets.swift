/// How a teacher's logits are turned into targets.
public enum TeacherCentering: String, NamedOptionValue {
    /// DINO's centring: `softmax((t − c) / τ)` with `c` an EMA of the teacher's mean output
    /// (Caron et al., 2021).
    case ema
    /// DINOv2's Sinkhorn-Knopp normalisation (`sinkhorn_knopp_teacher` in
    /// facebookresearch/dinov2 `dinov2/loss/dino_clstoken_loss.py`, 3 iterations, after SwAV):
    /// the batch's targets are made an equipartition over the prototypes; there is no centre.
    case sinkhorn
}

/// Teacher targets with centring and sharpening, as DINO computes them: probabilities
/// `softmax((t − c) / τ_teacher)` with a centre `c` that follows an EMA of the teacher's raw
/// outputs (`DINOLoss.update_center` in facebookresearch/dino `main_dino.py`), or, with ``TeacherCentering/sinkhorn``, DINOv2's Sinkhorn-Knopp
/// assignment. SelfPatch uses a second instance for its patch-level logits.
public final class CenteredTargets {
    /// The centre, `[1, outputDimension]` (unused, and kept at zero, with Sinkhorn-Knopp).
    public let center: Tensor
    /// The EMA momentum of the centre (0.9 in DINO).
    public let momentum: Double
    public let centering: TeacherCentering
    /// The Sinkhorn-Knopp iterations (3 in DINOv2).
    public static let sinkhornIterations = 3

    public init(outputDimension: Int, momentum: Double, centering: TeacherCentering = .ema) {
        center = Tensor.zeros([1, outputDimension])
        self.momentum = momentum
        self.centering = centering
    }

    /// The sharpened, centred probabilities of `teacherLogits` (`[rows, outputDimension]`),
    /// as constants. Sinkhorn-Knopp normalises over the rows of every process together.
    public func probabilities(of teacherLogits: Tensor, temperature: Double, collective: Collective) -> Tensor {
        GradientMode.withoutGradient {
            switch centering {
            case .ema: (teacherLogits - center).softmax(scale: Float(1 / temperature))
            case .sinkhorn: Self.sinkhornKnopp(teacherLogits, temperature: temperature, collective: collective)
            }
        }
    }

    /// DINOv2's `sinkhorn_knopp_teacher`: `Q = exp(t / τ)` normalised to sum 1 over all
    /// processes, then alternately each prototype's total (summed over all processes) set to
    /// 1/K and each row's total to 1/B, B the global number of rows (summed over the processes,
    /// which may hold different numbers: iBOT's hidden patches); the rows are returned scaled to
    /// sum to 1.
    static func sinkhornKnopp(_ logits: Tensor, temperature: Double, collective: Collective) -> Tensor {
        precondition(logits.rank == 2, "Sinkhorn-Knopp expects [rows, prototypes] logits, got \(logits.describe).")
        let prototypes = Float(logits.shape[1])
        let rowCount = Tensor(shape: [1], elements: [Float(logits.shape[0])])
        collective.allReduceSum(rowCount)
        let rows = rowCount.storage.base[0]
        var assignment = (logits * Float(1 / temperature)).exp()
        let total = assignment.sum()
        collective.allReduceSum(total)
        assignment = assignment / total
        for _ in 0..<sinkhornIterations {
            let prototypeTotals = assignment.sum(axes: [0], keepingDimensions: true)
            collective.allReduceSum(prototypeTotals)
            assignment = assignment / prototypeTotals / prototypes
            assignment = assignment / assignment.sum(axes: [1], keepingDimensions: true) / rows
        }
        return assignment * rows
    }

    /// Moves the centre toward the mean row of `teacherLogits` over all processes:
    /// `c ← m·c + (1 − m)·Σ rows / (rows · worldSize)`. Nothing happens with Sinkhorn-Knopp.
    public func update(with teacherLogits: Tensor, collective: Collective) {
        update(with: [teacherLogits], collective: collective)
    }

    /// Moves the centre toward the mean row of all `blocks` together (each `[rows, K]`), so
    /// that every row counts once whatever block it is in (SelfPatch's token-weighted patch
    /// centre). Nothing happens with Sinkhorn-Knopp.
    public func update(with blocks: [Tensor], collective: Collective) {
        guard centering == .ema else { return }
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
