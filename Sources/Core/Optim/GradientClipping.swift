/// Gradient clipping per parameter tensor, as DINO does it (not a global norm): each gradient
/// whose norm n exceeds the threshold is scaled by `maximumNorm / (n + 1e-6)`.
public enum GradientClipping {
    /// Clips each gradient in place and returns the norms before clipping, by name; with an
    /// infinite `maximumNorm` it only measures.
    @discardableResult
    public static func clipPerParameter(
        _ parameters: [(name: String, tensor: Tensor)], maximumNorm: Double
    ) -> [String: Double] {
        var norms: [String: Double] = [:]
        for (name, parameter) in parameters {
            guard let gradient = parameter.gradient else { continue }
            let norm = gradient.sumOfSquares.squareRoot()
            norms[name] = norm
            // Same float32 arithmetic as PyTorch: clip_coef = max_norm / (norm + 1e-6).
            let coefficient = Float(maximumNorm) / (Float(norm) + 1e-6)
            if coefficient < 1 { gradient.scaleInPlace(by: coefficient) }
        }
        return norms
    }
}
