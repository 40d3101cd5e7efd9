import CKernels
#if canImport(Glibc)
import Glibc
#endif

extension Tensor {
    /// A new tensor with `transform` applied to every element, split across cores when large.
    func mapElements(_ transform: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        let input = storage.base, out = result.storage.base
        Parallel.forEachChunk(of: count, minimumChunk: 1 << 16) { _, range in
            transform(input + range.lowerBound, out + range.lowerBound, range.count)
        }
        return result
    }

    /// e raised to each element.
    public func exp() -> Tensor {
        let result = mapElements { ssl_exp($0, $1, Int64($2)) }
        return result.recording("exp", inputs: [self]) { g in [g * result] }
    }

    /// The natural logarithm of each element.
    public func log() -> Tensor {
        mapElements { x, y, n in for i in 0..<n { y[i] = logf(x[i]) } }
            .recording("log", inputs: [self]) { g in [g / self] }
    }

    /// The square root of each element.
    public func squareRoot() -> Tensor {
        let result = mapElements { x, y, n in for i in 0..<n { y[i] = x[i].squareRoot() } }
        return result.recording("sqrt", inputs: [self]) { g in [g / (result * 2)] }
    }

    /// Each element squared.
    public func squared() -> Tensor {
        mapElements { x, y, n in for i in 0..<n { y[i] = x[i] * x[i] } }
            .recording("square", inputs: [self]) { g in [g * self * 2] }
    }

    /// Each element raised to `exponent`.
    public func power(_ exponent: Float) -> Tensor {
        mapElements { x, y, n in for i in 0..<n { y[i] = powf(x[i], exponent) } }
            .recording("pow", inputs: [self]) { g in [g * self.power(exponent - 1) * exponent] }
    }

    /// max(x, 0).
    public func relu() -> Tensor {
        mapElements { x, y, n in for i in 0..<n { y[i] = max(x[i], 0) } }
            .recording("relu", inputs: [self]) { g in
                [g.zipElements(self) { gradient, x in x > 0 ? gradient : 0 }]
            }
    }

    /// The Gaussian error linear unit in its exact form, x·Φ(x) with Φ the standard normal CDF.
    public func gelu() -> Tensor {
        mapElements { ssl_gelu_forward($0, nil, $1, 1, Int64($2)) }
            .recording("gelu", inputs: [self]) { g in
                let result = Tensor(uninitializedShape: self.shape)
                let x = self.storage.base, dy = g.storage.base, dx = result.storage.base
                Parallel.forEachChunk(of: self.count, minimumChunk: 1 << 16) { _, range in
                    ssl_gelu_backward(
                        x + range.lowerBound, dy + range.lowerBound, dx + range.lowerBound,
                        Int64(range.count))
                }
                return [result]
            }
    }

    /// Each element clamped to at least `minimum`; the gradient passes only where it was above.
    public func clamped(min minimum: Float) -> Tensor {
        mapElements { x, y, n in for i in 0..<n { y[i] = max(x[i], minimum) } }
            .recording("clamp", inputs: [self]) { g in
                [g.zipElements(self) { gradient, x in x > minimum ? gradient : 0 }]
            }
    }

    /// Combines two same-shaped tensors element by element, recording no history.
    func zipElements(_ other: Tensor, _ combine: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "zipElements: \(describe) and \(other.describe).")
        let result = Tensor(uninitializedShape: shape)
        let a = storage.base, b = other.storage.base, out = result.storage.base
        for i in 0..<count { out[i] = combine(a[i], b[i]) }
        return result
    }
}
