import ArgumentParser
import SSLCore
import SSLPlugins

#if canImport(Glibc)
import Glibc
#endif

@main
struct Benchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssl-bench",
        abstract: "Measures SwiftSSL's engine in a release build.",
        discussion: "Run without a subcommand for the full suite recorded in BENCHMARKS.md.",
        subcommands: [Suite.self, ViTStep.self, TrainingStep.self, GEMM.self, BFloat16GEMM.self, Loader.self, Augmentations.self],
        defaultSubcommand: Suite.self)

    static func main() {
        BLAS.restartWithNativeKernelsIfNeeded()
        main(nil)
    }
}

/// The options that select a ViT forward+backward workload.
struct ViTWorkload: ParsableArguments {
    @Option(help: "Embedding width.") var dimension = 192
    @Option(help: "Number of blocks.") var depth = 12
    @Option(help: "Number of heads.") var heads = 3
    @Option(help: "Patch size.") var patch = 16
    @Option(help: "Image side.") var image = 224
    @Option(help: "Images per step.") var batch = 16
    @Option(help: "Timed steps (after one warm-up step).") var steps = 5

    var label: String { "ViT d\(dimension)x\(depth) p\(patch) @\(image), batch \(batch)" }
}

extension Benchmark {
    struct Suite: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The workloads of BENCHMARKS.md.")

        func run() throws {
            print("OpenBLAS: \(BLAS.configuration); threads: \(Parallel.threadCount)")
            for arguments in [
                ["--patch", "16", "--image", "224", "--batch", "16"],
                ["--patch", "4", "--image", "32", "--batch", "64"],
            ] {
                let workload = try ViTWorkload.parse(arguments)
                ViTStep.measure(workload)
                GEMM.roofline(for: workload)
            }
            for preset in ["dino", "selfpatch-original"] {
                try TrainingStep.parse(["--preset", preset]).run()
            }
            try Loader.parse([]).run()
        }
    }

    struct TrainingStep: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "step",
            abstract: "A full training step of a preset at ViT-Tiny/16: teacher and student passes, losses, "
                + "backward, clipping, AdamW, EMA.",
            discussion: "The last line is machine-readable for tools/benchmark/summarise.py: RESULT workload=<name> "
                + "side=swift batch=<images> images_per_second=<x> ms_per_step=<x> peak_mb=<x> threads=<n> tasks=<a+b> "
                + "(peak_mb: the peak resident set size over the timed steps, restarted after the warm-up step).")
        @Option(help: "The recipe: \(Preset.allCases.map(\.rawValue).joined(separator: ", ")).") var preset = "selfpatch-original"
        @Option(help: "Images per step.") var batch = 4
        @Option(help: "Timed steps (after one warm-up step).") var steps = 3
        @Option(help: "Backbone width (192 = ViT-Tiny).") var dimension = 192
        @Option(help: "Heads.") var heads = 3
        @Option(help: ArgumentHelp(
            "Comma-separated tasks in place of the preset's, resolved as ssl-run --tasks does: a task the "
                + "preset has keeps its weight and options, another takes its default weight."))
        var tasks: String?
        @Option(help: ArgumentHelp(
            "Side of the global crops in pixels, also the size the position table is laid out for (as ssl-run --global-size)."))
        var globalSize: Int?
        @Option(help: "Side of the local crops in pixels.") var localSize: Int?
        @Option(help: "Number of local crops (0: global crops only).") var localCrops: Int?
        @Option(help: "Patch size in pixels (default: the preset's).") var patchSize: Int?
        @Option(help: "The workload's name in the RESULT line (default: the preset's).") var workload: String?
        @Option(help: "Operand format of the step's matrix products: fp32 or bf16.") var precision = BLAS.Precision.float32

        func run() throws {
            guard let chosen = Preset(rawValue: preset) else {
                throw ValidationError("Unknown preset '\(preset)'; choose one of \(Preset.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            var recipe = chosen.recipe
            recipe.backbone.embedDimension = dimension
            recipe.backbone.heads = heads
            recipe.batchSize = batch
            if let globalSize {
                recipe.views.globalSize = globalSize
                recipe.backbone.imageSize = globalSize
            }
            if let localSize { recipe.views.localSize = localSize }
            if let localCrops { recipe.views.localCount = localCrops }
            if let patchSize { recipe.backbone.patchSize = patchSize }
            if let tasks { try recipe.selectTasks(tasks, registry: .builtIn) }
            recipe.precision = precision
            let startupBytes = MemoryUsage.currentResidentBytes
            let trainer = try recipe.makeTrainer(registry: .builtIn, iterationsPerEpoch: 1000)
            let modelBytes = MemoryUsage.currentResidentBytes - startupBytes
            var generator = RandomGenerator(seed: 1)
            let views = recipe.views.sizes.map { Tensor.randomNormal([batch, 3, $0, $0], generator: &generator) }
            _ = try trainer.step(views: views, epoch: 1, iterationInEpoch: 0)
            MemoryUsage.resetPeak()
            StoragePool.shared.resetPeak()
            var seconds: [String: Double] = [:]
            let start = MonotonicClock.seconds
            for step in 0..<steps {
                let report = try trainer.step(views: views, epoch: 1, iterationInEpoch: step + 1)
                for (phase, value) in report.seconds { seconds[phase, default: 0] += value / Double(steps) }
            }
            let elapsed = (MonotonicClock.seconds - start) / Double(steps)
            let peakBytes = MemoryUsage.peakResidentBytes
            let split = seconds.sorted { $0.value > $1.value }.map { "\($0.key) \(format($0.value * 1000)) ms" }
            let locals = recipe.views.localCount > 0 ? " + \(recipe.views.localCount)x\(recipe.views.localSize)" : ""
            print(
                "\(preset) step (\(recipe.tasks.map(\.name).joined(separator: "+"))), ViT d\(dimension)x\(recipe.backbone.depth) "
                    + "p\(recipe.backbone.patchSize), \(recipe.views.globalCount)x\(recipe.views.globalSize)\(locals), "
                    + "batch \(batch): \(format(elapsed * 1000)) ms/step, "
                    + "\(format(Double(batch) / elapsed)) images/s, peak RSS \(format(Double(peakBytes) / 1e6)) MB "
                    + "(process start \(format(Double(startupBytes) / 1e6)) MB, model \(format(Double(modelBytes) / 1e6)) MB, "
                    + "tensors at most \(format(Double(StoragePool.shared.peakLiveBytes) / 1e6)) MB)")
            print("  split: " + split.joined(separator: ", "))
            print(
                "RESULT workload=\(workload ?? preset) side=\(precision == .float32 ? "swift" : "swift-bf16") batch=\(batch) "
                    + "images_per_second=\(format(Double(batch) / elapsed, places: 3)) ms_per_step=\(format(elapsed * 1000, places: 1)) "
                    + "peak_mb=\(format(Double(peakBytes) / 1e6, places: 1)) threads=\(Parallel.threadCount) "
                    + "tasks=\(recipe.tasks.map(\.name).joined(separator: "+"))")
        }
    }

    struct ViTStep: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vit", abstract: "ViT forward + backward of sum(cls²), as the PyTorch anchor.")
        @OptionGroup var workload: ViTWorkload

        func run() { Self.measure(workload) }

        static func measure(_ w: ViTWorkload) {
            let configuration = VisionTransformerConfiguration(
                embedDimension: w.dimension, depth: w.depth, heads: w.heads, patchSize: w.patch, imageSize: w.image)
            let model = VisionTransformer(configuration)
            var generator = RandomGenerator(seed: 0)
            let images = Tensor.randomNormal([w.batch, 3, w.image, w.image], generator: &generator)
            func step() {
                model.clearGradients()
                let tokens = model(images)
                tokens.sliced(0..<1, axis: 1).squared().sum().backward()
            }
            step()
            MemoryUsage.resetPeak()
            let baseline = MemoryUsage.currentResidentBytes
            let start = MonotonicClock.seconds
            for _ in 0..<w.steps { step() }
            let elapsed = (MonotonicClock.seconds - start) / Double(w.steps)
            let peak = MemoryUsage.peakResidentBytes
            let flops = stepFLOPs(w)
            print(
                "\(w.label): \(format(elapsed * 1000)) ms/step, \(format(Double(w.batch) / elapsed)) images/s, "
                    + "\(format(flops / elapsed / 1e9)) GFLOP/s, peak RSS \(format(Double(peak) / 1e6)) MB "
                    + "(\(format(Double(peak - baseline) / 1e6)) MB above the step's start)")
        }

        /// Multiply-add FLOPs of the step's products: the blocks' (qkv, attention, proj, MLP)
        /// forward and both gradients, and the patch embedding's forward and weight gradient (the
        /// images need no gradient).
        static func stepFLOPs(_ w: ViTWorkload) -> Double {
            let length = Double((w.image / w.patch) * (w.image / w.patch) + 1)
            let tokens = Double(w.batch) * length, d = Double(w.dimension)
            let perBlock = 2 * tokens * d * (3 * d + d + 8 * d) + 4 * Double(w.batch) * length * length * d
            let embed = 2 * Double(w.batch) * (length - 1) * Double(3 * w.patch * w.patch) * d
            return 2 * embed + 3 * Double(w.depth) * perBlock
        }
    }

    struct GEMM: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gemm",
            abstract: "sgemm GFLOP/s of each library at the shapes of the ViT step's products outside attention (the roofline), split across cores as the engine splits them.")
        @OptionGroup var workload: ViTWorkload

        func run() { Self.roofline(for: workload) }

        /// Every product of the ViT step outside attention: the forward, input-gradient and
        /// weight-gradient products of each block's qkv, proj, fc1 and fc2 layers, and the patch
        /// embedding's forward and weight-gradient products (the images need no gradient). A line
        /// each, with how many times a step runs it and every library's median GFLOP/s over 5
        /// rounds (the libraries alternating within each round).
        static func roofline(for w: ViTWorkload) {
            let patches = (w.image / w.patch) * (w.image / w.patch)
            let tokens = w.batch * (patches + 1)
            let d = w.dimension
            let embedding = ProductShape.layer("patch_embed", rows: w.batch * patches, inputs: 3 * w.patch * w.patch, outputs: d)
                .filter { !$0.name.hasSuffix("input gradient") }
            let blocks =
                ProductShape.layer("qkv", rows: tokens, inputs: d, outputs: 3 * d)
                + ProductShape.layer("proj", rows: tokens, inputs: d, outputs: d)
                + ProductShape.layer("fc1", rows: tokens, inputs: d, outputs: 4 * d)
                + ProductShape.layer("fc2", rows: tokens, inputs: 4 * d, outputs: d)
            let shapes = embedding.map { ($0, 1) } + blocks.map { ($0, w.depth) }
            print("  sgemm GFLOP/s (" + BLAS.Library.allCases.map(\.rawValue).joined(separator: ", ") + "):")
            for (shape, timesPerStep) in shapes {
                let a = TensorStorage(count: shape.m * shape.k, repeating: 0.5)
                let b = TensorStorage(count: shape.k * shape.n, repeating: 0.25)
                let c = TensorStorage(count: shape.m * shape.n, repeating: 0)
                let repeats = max(3, Int(5e8 / shape.flops))
                var rates = [BLAS.Library: [Double]]()
                for round in 0...5 {
                    for library in BLAS.Library.allCases {
                        let start = MonotonicClock.seconds
                        for _ in 0..<repeats {
                            BLAS.gemm(
                                transposeA: shape.transposeA, transposeB: shape.transposeB, m: shape.m, n: shape.n, k: shape.k,
                                a: a.base, lda: shape.transposeA ? shape.m : shape.k, b: b.base,
                                ldb: shape.transposeB ? shape.k : shape.n, c: c.base, ldc: shape.n, library: library)
                        }
                        // Round 0 warms up.
                        if round > 0 {
                            rates[library, default: []].append(shape.flops * Double(repeats) / (MonotonicClock.seconds - start) / 1e9)
                        }
                    }
                }
                let medians = BLAS.Library.allCases.map { library in median(rates[library]!) }
                print("    \(shape.name) \(shape.m)x\(shape.n)x\(shape.k) x\(timesPerStep): " + medians.map { format($0) }.joined(separator: ", "))
            }
        }
    }
}

/// One product as a linear layer meets it: forward (x·Wᵀ), input gradient (g·W) or weight
/// gradient (gᵀ·x).
struct ProductShape {
    var name: String
    var transposeA = false, transposeB = false
    var m: Int, n: Int, k: Int

    var flops: Double { 2 * Double(m * n * k) }

    static func layer(_ name: String, rows: Int, inputs: Int, outputs: Int) -> [ProductShape] {
        [
            ProductShape(name: "\(name) forward", transposeB: true, m: rows, n: outputs, k: inputs),
            ProductShape(name: "\(name) input gradient", m: rows, n: inputs, k: outputs),
            ProductShape(name: "\(name) weight gradient", transposeA: true, m: outputs, n: inputs, k: rows),
        ]
    }
}

extension Benchmark {
    struct BFloat16GEMM: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bf16-gemm",
            abstract: "float32 sgemm against each bfloat16 kernel at the product shapes of 28-pixel crops (patches of 4 and 7) and of ViT-Tiny/16.",
            discussion: "The kernels alternate within each round; the table gives the median GFLOP/s of the rounds.")
        @Option(help: "Rounds per shape (each kernel once per round).") var rounds = 5
        @Option(help: "Seconds of work per kernel in one round.") var seconds = 0.05

        static let shapes: [ProductShape] =
            // The fashion-mnist preset until 2026-12-03 (patches of 4): 64 images of 50 tokens (28-pixel
            // crops) or 10 tokens (12-pixel crops), width 192.
            ProductShape.layer("small 64x50 qkv", rows: 3_200, inputs: 192, outputs: 576)
            + ProductShape.layer("small 64x50 fc1", rows: 3_200, inputs: 192, outputs: 768)
            + ProductShape.layer("small 64x50 fc2", rows: 3_200, inputs: 768, outputs: 192)
            + [ProductShape.layer("small 64x10 qkv", rows: 640, inputs: 192, outputs: 576)[0]]
            // The fashion-mnist preset since 2026-12-03 (patches of 7, 16 images): 2 global crops of 17
            // tokens (544 rows) and 4 local crops of 10 tokens (640 rows).
            + ProductShape.layer("main 16x2x17 fc1", rows: 544, inputs: 192, outputs: 768)
            + ProductShape.layer("main 16x4x10 fc2", rows: 640, inputs: 768, outputs: 192)
            // ViT-Tiny/16 at 224 pixels, 4 images of 197 tokens.
            + [ProductShape.layer("tiny 4x197 qkv", rows: 788, inputs: 192, outputs: 576)[0]]
            + [ProductShape.layer("tiny 4x197 fc1", rows: 788, inputs: 192, outputs: 768)[0]]
            // One head's attention products at 28 pixels (50 tokens, 64 channels): scores and values.
            + [ProductShape(name: "small attention scores", transposeB: true, m: 50, n: 50, k: 64)]
            + [ProductShape(name: "small attention values", m: 50, n: 64, k: 50)]

        func run() {
            print("OpenBLAS: \(BLAS.configuration); threads: \(Parallel.threadCount); AVX512_BF16: \(BF16.isSupported)")
            if let peaks = BF16.instructionPeaks() {
                print("one-thread instruction peaks: vdpbf16ps \(format(peaks.bfloat16)) GFLOP/s, float32 FMA \(format(peaks.float32)) GFLOP/s")
            }
            let kernels = BF16.isSupported ? BF16.Kernel.allCases : [.singlePrecision]
            print("shape (M x N x K), median GFLOP/s of \(rounds) rounds: " + kernels.map(\.rawValue).joined(separator: ", "))
            var generator = RandomGenerator(seed: 0)
            for shape in Self.shapes {
                let a = (0..<shape.m * shape.k).map { _ in Float.random(in: -1...1, using: &generator) }
                let b = (0..<shape.k * shape.n).map { _ in Float.random(in: -1...1, using: &generator) }
                var c = [Float](repeating: 0, count: shape.m * shape.n)
                let flops = shape.flops
                let repeats = max(1, Int(seconds * 2e11 / flops))
                var rates = [[Double]](repeating: [], count: kernels.count)
                for round in 0...rounds {
                    for (index, kernel) in kernels.enumerated() {
                        let start = MonotonicClock.seconds
                        for _ in 0..<repeats {
                            BF16.gemm(
                                transposeA: shape.transposeA, transposeB: shape.transposeB, m: shape.m, n: shape.n, k: shape.k,
                                a: a, lda: shape.transposeA ? shape.m : shape.k, b: b, ldb: shape.transposeB ? shape.k : shape.n,
                                c: &c, ldc: shape.n, kernel: kernel)
                        }
                        // Round 0 warms up.
                        if round > 0 { rates[index].append(flops * Double(repeats) / (MonotonicClock.seconds - start) / 1e9) }
                    }
                }
                let medians = rates.map { format(median($0)) }
                print("  \(shape.name) \(shape.m)x\(shape.n)x\(shape.k): " + medians.joined(separator: ", "))
            }
        }
    }
}

extension Benchmark {
    struct Loader: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "loader",
            abstract: "SelfPatch multi-crop (2x224 + 8x96) from a JPEG, decode included, as tools/benchmark/pytorch_loader.py.")
        @Option(help: "The JPEG every sample decodes (written by tools/benchmark/pytorch_loader.py).")
        var image = "tools/benchmark/loader-500x375.jpg"
        @Option(help: "Timed images per thread count (after one warm-up batch).") var images = 192
        @Option(help: "Images per batch.") var batch = 16
        @Option(help: "Loader thread counts to measure, comma-separated.") var threads = "1,2"
        @Flag(help: "Measure the small SelfPatch recipe (2x32 + 4x16) on Fashion-MNIST instead.")
        var fashionMNIST = false

        func run() throws {
            let dataset: any ImageDataset =
                fashionMNIST
                ? try FashionMNISTDataset(split: .train) : try RepeatedFileDataset(path: image, count: images + batch)
            let recipe: MultiCropRecipe = fashionMNIST
                ? .dino(globalSize: 32, localSize: 16, localCount: 4, globalScale: 0.25...1, localScale: 0.05...0.25)
                : .dino(globalScale: 0.25...1, localScale: 0.05...0.25)
            let label = fashionMNIST ? "SelfPatch 2x32 + 4x16 from Fashion-MNIST" : "SelfPatch 2x224 + 8x96 from \(image)"
            for threadCount in threads.split(separator: ",").compactMap({ Int($0) }) {
                let loader = try DataLoader(dataset: dataset, recipe: recipe, batchSize: batch, seed: 0, threadCount: threadCount)
                _ = try loader.next()
                let start = MonotonicClock.seconds
                for _ in 0..<images / batch { _ = try loader.next() }
                let elapsed = MonotonicClock.seconds - start
                print("SwiftSSL loader, \(label), \(threadCount) thread(s): \(format(Double(images / batch * batch) / elapsed)) images/s")
            }
        }
    }
}

extension Benchmark {
    struct Augmentations: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time per image of each augmentation step of the fashion-mnist preset's crops (from "
                + "Fashion-MNIST), on one thread: where the data loader's time goes.")
        @Option(help: "Images timed.") var images = 2000

        func run() throws {
            let dataset = try FashionMNISTDataset(split: .train)
            let plan = Preset.fashionMNIST.recipe.views
            let views = AugmentationRecipe.multiCrop.crops(for: plan).views
            var seconds: [String: Double] = [:]
            var order: [String] = []
            var generator = RandomGenerator(seed: 0)
            let sources = try (0..<images).map { try dataset.image(at: $0) }
            let output = UnsafeMutablePointer<Float>.allocate(capacity: 3 * plan.globalSize * plan.globalSize)
            defer { output.deallocate() }
            for source in sources {
                for view in views {
                    var image = source
                    for step in view.augmentations {
                        let name = "\(type(of: step))"
                        if seconds[name] == nil { order.append(name) }
                        seconds[name, default: 0] += MonotonicClock.measure { step.apply(to: &image, generator: &generator) }
                    }
                    if seconds["normalisation"] == nil { order.append("normalisation") }
                    seconds["normalisation", default: 0] += MonotonicClock.measure { view.normalization.write(image, to: output) }
                }
            }
            let total = seconds.values.reduce(0, +)
            print("\(images) images, \(views.count) crops each, one thread: \(format(Double(images) / total)) images/s")
            for name in order {
                print("  \(name): \(format(1e6 * seconds[name]! / Double(images))) µs per image (\(format(100 * seconds[name]! / total)) %)")
            }
        }
    }
}

/// `count` samples that all decode the same image file.
struct RepeatedFileDataset: ImageDataset {
    let path: String
    let count: Int

    init(path: String, count: Int) throws {
        _ = try ImageDecoder.decode(contentsOf: path)
        self.path = path
        self.count = count
    }

    func image(at index: Int) throws -> Image { try ImageDecoder.decode(contentsOf: path) }
    func label(at index: Int) -> Int? { nil }
    var classNames: [String] { [] }
    var description: String { "\(count) x \(path)" }
}

/// `value` rounded to `places` decimal places.
/// The middle value of the rounds' measurements (the upper one of the two middle values for an even count).
private func median(_ values: [Double]) -> Double {
    values.sorted()[values.count / 2]
}

private func format(_ value: Double, places: Int = 1) -> String {
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    return String((value * scale).rounded() / scale)
}

extension BLAS.Precision: ExpressibleByArgument {}
