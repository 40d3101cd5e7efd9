/// Colour maps for scalar pictures.
public enum ColorMap {
    /// Matplotlib's viridis sampled at nine evenly spaced points; values between are linearly
    /// interpolated.
    static let viridisAnchors: [(Double, Double, Double)] = [
        (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
        (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
    ]

    /// The viridis colour of `value` in [0, 1] (clamped; NaN maps to 0).
    public static func viridis(_ value: Double) -> (red: UInt8, green: UInt8, blue: UInt8) {
        let clamped = value.isNaN ? 0 : min(max(value, 0), 1)
        let position = clamped * Double(viridisAnchors.count - 1)
        let lower = min(Int(position), viridisAnchors.count - 2)
        let t = position - Double(lower)
        let a = viridisAnchors[lower], b = viridisAnchors[lower + 1]
        func mix(_ x: Double, _ y: Double) -> UInt8 { UInt8((x + (y - x) * t).rounded()) }
        return (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}
