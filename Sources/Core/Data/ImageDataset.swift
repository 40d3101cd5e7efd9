/// A collection of images, optionally labelled, that the loader samples from.
///
/// Conforming types are immutable after creation and safe to read from several threads.
public protocol ImageDataset: Sendable, CustomStringConvertible {
    /// The number of images.
    var count: Int { get }
    /// The image at `index` (0..<count), decoded to RGB; throws when it cannot be read.
    func image(at index: Int) throws -> Image
    /// The class of the image at `index`, or `nil` for an unlabelled dataset.
    func label(at index: Int) -> Int?
    /// The names of the classes that labels index into; empty for an unlabelled dataset.
    var classNames: [String] { get }
}
