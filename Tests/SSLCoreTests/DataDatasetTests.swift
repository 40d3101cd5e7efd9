import SSLCore
import SSLTestSupport
import XCTest

/// The datasets: discovery, labels, formats and the errors for bad input.
final class DataDatasetTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = "/tmp/swiftssl-data-\(getpid())-\(name.filter { $0.isLetter })"
        try run("rm -rf '\(folder)' && mkdir -p '\(folder)'")
    }

    override func tearDownWithError() throws {
        try run("rm -rf '\(folder)'")
    }

    private func run(_ command: String) throws {
        guard system(command) == 0 else { throw DataError(path: folder, problem: "command failed: \(command)") }
    }

    private func write(_ bytes: [UInt8], to path: String) {
        let file = fopen(path, "wb")!
        fwrite(bytes, 1, bytes.count, file)
        fclose(file)
    }

    func testImageFolderLabelsFromFirstLevelSubfolders() throws {
        let images = DataDecodingTests.imageFolder
        try run("""
            cd '\(folder)' && mkdir -p cats/nested dogs && cp '\(images)/baseline.jpg' cats/b.jpg \
            && cp '\(images)/rgb.png' cats/nested/a.PNG && cp '\(images)/grey.jpg' dogs/z.jpeg \
            && echo not-an-image > dogs/notes.txt && cp '\(images)/palette.png' dogs/.hidden.png
            """)
        let dataset = try ImageFolderDataset(path: folder)
        XCTAssertEqual(dataset.paths, ["cats/b.jpg", "cats/nested/a.PNG", "dogs/z.jpeg"].map { "\(folder)/\($0)" })
        XCTAssertEqual(dataset.classNames, ["cats", "dogs"])
        XCTAssertEqual((0..<3).map { dataset.label(at: $0) }, [0, 0, 1])
        XCTAssertEqual(try dataset.image(at: 2).width, 48)

        try run("cp '\(images)/rgb.png' '\(folder)/loose.png'")
        let unlabelled = try ImageFolderDataset(path: folder + "/")
        XCTAssertEqual(unlabelled.count, 4)
        XCTAssertNil(unlabelled.label(at: 0))
        XCTAssertEqual(unlabelled.classNames, [])
    }

    func testImageFolderErrorsNameThePath() throws {
        func assertError(_ path: String, contains text: String, line: UInt = #line) {
            XCTAssertThrowsError(try ImageFolderDataset(path: path), line: line) { error in
                XCTAssertEqual((error as? DataError)?.path, path, line: line)
                XCTAssertTrue("\(error)".contains(text), "\(error)", line: line)
            }
        }
        assertError("\(folder)/missing", contains: "does not exist")
        assertError(folder, contains: "holds no JPEG or PNG file")
        write(Array("garbage".utf8), to: "\(folder)/broken.jpg")
        write([0xFF, 0xD8, 0xFF, 0xE0, 0, 0], to: "\(folder)/cut.jpg")
        assertError(folder, contains: "none of its 2 image files decodes")
    }

    func testFashionMNISTReadsBothSplits() throws {
        let test = try FashionMNISTDataset(split: .test)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(test.classNames.count, 10)
        XCTAssertEqual(test.label(at: 0), 9)  // The first test image is an ankle boot.
        let image = try test.image(at: 0)
        XCTAssertEqual([image.width, image.height], [28, 28])
        XCTAssertEqual(image[14, 14, 0], image[14, 14, 2])
        XCTAssertGreaterThan(image.pixels.max()!, 200)
        let counts = (0..<test.count).reduce(into: [Int](repeating: 0, count: 10)) { $0[test.label(at: $1)!] += 1 }
        XCTAssertEqual(counts, Array(repeating: 1000, count: 10))
        XCTAssertEqual(try FashionMNISTDataset(split: .train).count, 60_000)
    }

    func testGarmentsAreTintedOnTexturedBackgroundsWithTheirClasses() throws {
        let source = try FashionMNISTDataset(split: .test)
        let garments = FashionMNISTGarments(source: source, seed: 3)
        XCTAssertEqual(garments.count, source.count)
        XCTAssertEqual(garments.classNames, source.classNames)
        for index in [0, 1, 9_999] {
            let image = try garments.image(at: index), grey = try source.image(at: index)
            XCTAssertEqual(image, try FashionMNISTGarments(source: source, seed: 3).image(at: index))
            XCTAssertNotEqual(image, try FashionMNISTGarments(source: source, seed: 4).image(at: index))
            XCTAssertEqual(garments.label(at: index), source.label(at: index))
            XCTAssertEqual([image.width, image.height], [28, 28])
            // Garment pixels are the grey value times one factor per channel in 0.55…1; the others
            // are a background that is neither black nor flat.
            var factors: [[Float]] = [[], [], []], background = Set<UInt8>()
            for y in 0..<28 {
                for x in 0..<28 {
                    let value = grey[x, y, 0]
                    if value > FashionMNISTScenes.foregroundThreshold {
                        for channel in 0..<3 { factors[channel].append(Float(image[x, y, channel]) / Float(value)) }
                    } else {
                        for channel in 0..<3 { background.insert(image[x, y, channel]) }
                    }
                }
            }
            for channel in 0..<3 {
                let (low, high) = (factors[channel].min()!, factors[channel].max()!)
                XCTAssertTrue(low >= 0.5 && high <= 1 && high - low < 0.05, "image \(index) channel \(channel): \(low)…\(high)")
            }
            XCTAssertGreaterThan(background.count, 10, "image \(index)")
            XCTAssertGreaterThan(background.max()!, 40, "image \(index)")
        }
    }

    func testMalformedIDXFilesAreErrorsNamingTheFile() throws {
        let labels = "\(folder)/t10k-labels-idx1-ubyte.gz", images = "\(folder)/t10k-images-idx3-ubyte.gz"
        XCTAssertThrowsError(try FashionMNISTDataset(split: .test, folder: folder)) { error in
            XCTAssertEqual((error as? DataError)?.path, images)
        }
        write([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28] + Array(repeating: 7, count: 2 * 784), to: images)
        write([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3], to: labels)
        XCTAssertThrowsError(try FashionMNISTDataset(split: .test, folder: folder)) { error in
            XCTAssertEqual((error as? DataError)?.path, labels)
            XCTAssertTrue("\(error)".contains("holds 3 labels"), "\(error)")
        }
        write([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3], to: images)
        XCTAssertThrowsError(try FashionMNISTDataset(split: .test, folder: folder)) { error in
            XCTAssertEqual((error as? DataError)?.path, images)
            XCTAssertTrue("\(error)".contains("data bytes"), "\(error)")
        }
        write([1, 2, 3, 4], to: images)
        XCTAssertThrowsError(try FashionMNISTDataset(split: .test, folder: folder)) { error in
            XCTAssertTrue("\(error)".contains("bad magic number"), "\(error)")
        }
    }

    func testCIFARBinaryBatches() throws {
        // Two CIFAR-10 records: label, then the red, green and blue planes.
        var records: [UInt8] = []
        for (label, base) in [(UInt8(3), UInt8(10)), (UInt8(7), UInt8(100))] {
            records.append(label)
            for channel in 0..<3 { records += Array(repeating: base + UInt8(channel), count: 1024) }
        }
        write(records, to: "\(folder)/test_batch.bin")
        write(Array("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n".utf8), to: "\(folder)/batches.meta.txt")
        let dataset = try CIFARDataset(folder: folder, variant: .cifar10, split: .test)
        XCTAssertEqual(dataset.count, 2)
        XCTAssertEqual([dataset.label(at: 0), dataset.label(at: 1)], [3, 7])
        XCTAssertEqual(dataset.classNames[7], "horse")
        let image = try dataset.image(at: 1)
        XCTAssertEqual([image[5, 9, 0], image[5, 9, 1], image[5, 9, 2]], [100, 101, 102])

        write(Array(records.dropLast()), to: "\(folder)/test_batch.bin")
        XCTAssertThrowsError(try CIFARDataset(folder: folder, variant: .cifar10, split: .test)) { error in
            XCTAssertEqual((error as? DataError)?.path, "\(folder)/test_batch.bin")
        }
        XCTAssertThrowsError(try CIFARDataset(folder: folder, variant: .cifar100, split: .train)) { error in
            XCTAssertEqual((error as? DataError)?.path, "\(folder)/train.bin")
        }
    }

    func testHDF5ImagesWithAndWithoutLabels() throws {
        let path = Fixtures.folder + "/augmentations.h5"
        let fixtures = try Fixtures.open("augmentations.h5")
        let colour = try HDF5ImageDataset(path: path, imagesDataset: "dataset/images", labelsDataset: "dataset/labels")
        XCTAssertEqual(colour.count, 5)
        XCTAssertEqual((0..<5).map { colour.label(at: $0) }, [3, 1, 4, 1, 5])
        XCTAssertEqual(try colour.image(at: 2).pixels, Array(try fixtures.readBytes("dataset/images")[2 * 126..<3 * 126]))
        let grey = try HDF5ImageDataset(path: path, imagesDataset: "dataset/grey_images", labelsDataset: nil)
        XCTAssertNil(grey.label(at: 0))
        let greyImage = try grey.image(at: 4)
        XCTAssertEqual([greyImage.width, greyImage.height, Int(greyImage[6, 5, 1])], [7, 6, Int(try fixtures.readBytes("dataset/grey_images")[4 * 42 + 41])])
        XCTAssertThrowsError(try HDF5ImageDataset(path: path, imagesDataset: "dataset/flat")) { error in
            XCTAssertEqual((error as? DataError)?.path, path)
            XCTAssertTrue("\(error)".contains("expected N x H x W x C"), "\(error)")
        }
        XCTAssertThrowsError(try HDF5ImageDataset(path: "\(folder)/none.h5")) { error in
            XCTAssertEqual((error as? DataError)?.path, "\(folder)/none.h5")
        }
    }
}
