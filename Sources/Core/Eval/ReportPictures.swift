import Foundation

/// The pictures of a run report in a grid: one row per kind of picture (inputs, attention, …),
/// one column per backbone (trained beside random, for the same images), each shown twice its
/// size with pixels kept square, a caption saying what it shows and a colour scale where
/// colours encode values. The PNGs are embedded as data URIs.
struct ReportPictures {
    /// What a kind of ``RunPictures`` picture shows, by the file name's last part.
    struct Kind {
        var caption: String
        /// Whether its colours are values on the viridis scale (low to high, per map).
        var isViridis: Bool
    }

    /// The kinds ``RunPictures`` writes, as `<backbone>-<kind>.png`.
    static let kinds: [String: Kind] = [
        "inputs": Kind(caption: "The images probed, as the backbone sees them.", isViridis: false),
        "attention": Kind(
            caption: "Where the class token looks in the last block: one map per head, one row per image.", isViridis: true),
        "pca": Kind(
            caption: "The first three principal components of the patch features as red, green and blue: "
                + "patches of similar colour have similar features.", isViridis: false),
        "similarity": Kind(
            caption: "Cosine similarity of each patch to the centre patch (outlined in red); white outlines: "
                + "the k most similar of its 8 neighbours, the positives of a patch-neighbour objective.", isViridis: true),
    ]

    /// The screen pixels per picture pixel (pictures draw a patch as 8 pixels, so 16 on screen).
    static let magnification = 2

    /// The run's folder, against which relative picture paths resolve.
    var folder: String
    var pictures: [RunSummary.Picture]

    /// The grid as HTML.
    func html() -> String {
        // Titles read "<backbone>: <what it shows>".
        let parsed = pictures.map { picture -> (source: String, kind: String, picture: RunSummary.Picture) in
            let parts = picture.title.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let file = URL(fileURLWithPath: picture.path).deletingPathExtension().lastPathComponent
            let kind = file.split(separator: "-").last.map(String.init) ?? file
            return (parts.count == 2 ? parts[0] : "", kind, picture)
        }
        var sources: [String] = [], kinds: [String] = []
        for entry in parsed {
            if !sources.contains(entry.source) { sources.append(entry.source) }
            if !kinds.contains(entry.kind) { kinds.append(entry.kind) }
        }
        var html = "<div class=\"picture-grid\" style=\"--columns: \(sources.count)\">\n"
        html += sources.map { "<div class=\"picture-heading\">\(HTML.escaped($0.isEmpty ? "picture" : $0))</div>" }.joined() + "\n"
        for kind in kinds {
            let description = Self.kinds[kind]
            let fallback = parsed.first { $0.kind == kind }.map { $0.picture.title } ?? kind
            html += "<p class=\"picture-caption\"><strong>\(HTML.escaped(kind))</strong>: \(HTML.escaped(description?.caption ?? fallback))"
            if description?.isViridis == true { html += " " + Self.viridisScale }
            html += "</p>\n"
            for source in sources {
                let entry = parsed.first { $0.source == source && $0.kind == kind }
                html += "<figure>" + (entry.map { image($0.picture) } ?? "<p>–</p>") + "</figure>\n"
            }
        }
        return html + "</div>\n"
    }

    /// `picture` as an `<img>` with its PNG inline, or a note when the file is missing.
    private func image(_ picture: RunSummary.Picture) -> String {
        let path = picture.path.hasPrefix("/") ? picture.path : "\(folder)/\(picture.path)"
        guard let data = FileManager.default.contents(atPath: path) else {
            return "<p class=\"missing\">missing: \(HTML.escaped(picture.path))</p>"
        }
        let width = (try? ImageDecoder.decode([UInt8](data), path: path).width).map { " width=\"\($0 * Self.magnification)\"" } ?? ""
        return "<img alt=\"\(HTML.escaped(picture.title))\" title=\"\(HTML.escaped(picture.title))\"\(width) "
            + "src=\"data:image/png;base64,\(data.base64EncodedString())\">"
    }

    /// A colour bar from low to high on the viridis scale.
    static let viridisScale: String = {
        let stops = stride(from: 0.0, through: 1.0, by: 0.125).map { value in
            let colour = ColorMap.viridis(value)
            return String(format: "#%02x%02x%02x", colour.red, colour.green, colour.blue)
        }
        return "<span class=\"scale\"><span>low</span><span class=\"bar\" style=\"background: linear-gradient(to right, "
            + stops.joined(separator: ", ") + ")\"></span><span>high (per map)</span></span>"
    }()
}
