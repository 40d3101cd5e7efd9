/// An option whose values are names (a `String` enumeration), such as `--dino.centering`:
/// decoding an unknown name fails with the names there are, which the command line shows as
/// `--<task>.<option>: expects ema or sinkhorn, got 'mean'.`
public protocol NamedOptionValue: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {}

extension NamedOptionValue {
    /// Decodes a name, or fails with the names there are.
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Self(rawValue: text) else {
            let names = Self.allCases.map(\.rawValue)
            let choices = names.count > 1 ? names.dropLast().joined(separator: ", ") + " or " + names.last! : names.joined()
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "expects \(choices), got '\(text)'.")
        }
        self = value
    }
}
