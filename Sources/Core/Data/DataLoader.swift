#if canImport(Glibc)
import Glibc
#endif

/// Feeds training: background threads decode and augment images into batch tensors while the
/// model trains on earlier batches.
///
/// - **Batches:** one `[B, 3, S, S]` tensor per crop of the recipe, in the recipe's order, plus
///   the labels and dataset indices of the B images and where each crop comes from in its image
///   (``CropGeometry``).
/// - **Order:** each epoch visits a seeded shuffle of the dataset in batches, dropping the last
///   incomplete batch. With `worldSize > 1`, global batches of `B × worldSize` images are cut
///   from the shuffle and rank `r` takes the `r`-th slice of each.
/// - **Determinism:** the crops of image `i` in epoch `e` are drawn from
///   `RandomGenerator(seed:path: [e, i])` alone, so batches are bit-identical whatever the
///   thread count or timing, and a run restored with ``seek(to:)`` sees the same data. Crops
///   that paste (``ViewRecipe/pasteProbability``) draw their distractors from the same dataset.
/// - **Bad files:** an image that fails to decode is reported once on stderr, counted in
///   ``skippedFileCount(epoch:)``, and its slot is filled by the next readable image of the
///   shuffle (cropped with the failed image's random stream).
/// - **Buffers:** batch tensors come from ``StoragePool``, so the buffers of batches the
///   trainer has released are reused.
public final class DataLoader {
    /// A place in the stream of batches: the epoch and how many of its batches came before.
    public struct Cursor: Sendable, Equatable, CustomStringConvertible {
        public var epoch: Int
        public var position: Int

        public init(epoch: Int, position: Int) {
            self.epoch = epoch
            self.position = position
        }

        public var description: String { "epoch \(epoch), batch \(position)" }
    }

    /// One batch.
    public struct Batch {
        /// One `[B, 3, S, S]` tensor per crop, in the recipe's order.
        public let views: [Tensor]
        /// Where each crop of each image comes from: `geometry[view][image]`.
        public let geometry: [[CropGeometry]]
        /// The class of each image, or `nil` for an unlabelled dataset.
        public let labels: [Int]?
        /// The dataset index of each image.
        public let indices: [Int]
        /// Where this batch sits in the stream.
        public let cursor: Cursor
        /// Whether this is the last batch of its epoch.
        public let endsEpoch: Bool
    }

    private let state: LoaderState
    private var threads: [pthread_t] = []

    /// Batches per epoch (per rank).
    public var batchesPerEpoch: Int { state.batchesPerEpoch }

    /// The crops made of every image.
    public var recipe: MultiCropRecipe { state.recipe }

    /// Starts `threadCount` worker threads that prepare up to `prefetchBatches` batches ahead.
    ///
    /// - Parameters:
    ///   - batchSize: images per batch on this rank.
    ///   - rank, worldSize: this process's slice of each global batch.
    ///   - start: the first batch to deliver (a cursor stored in a checkpoint).
    public init(
        dataset: any ImageDataset, recipe: MultiCropRecipe, batchSize: Int, seed: UInt64,
        threadCount: Int = Parallel.threadCount, prefetchBatches: Int = 2, rank: Int = 0, worldSize: Int = 1,
        start: Cursor = Cursor(epoch: 0, position: 0)
    ) throws {
        precondition(batchSize > 0 && threadCount > 0 && prefetchBatches > 0, "Batch size, threads and prefetch must be positive.")
        precondition(worldSize > 0 && (0..<worldSize).contains(rank), "Rank \(rank) is outside world size \(worldSize).")
        let batches = dataset.count / (batchSize * worldSize)
        guard batches > 0 else {
            throw DataError(
                path: dataset.description,
                problem: "has \(dataset.count) images, fewer than one global batch of \(batchSize * worldSize)")
        }
        state = LoaderState(
            dataset: dataset, recipe: recipe, batchSize: batchSize, seed: seed, rank: rank, worldSize: worldSize,
            batchesPerEpoch: batches, prefetchBatches: prefetchBatches)
        seek(to: start)
        let state = state
        threads = (0..<threadCount).map { _ in WorkerThreads.start { state.work() } }
    }

    deinit {
        state.stop()
        threads.forEach(WorkerThreads.join)
    }

    /// The next batch to be delivered; store it in a checkpoint and pass it back to ``seek(to:)``
    /// or `init(start:)` to resume.
    public var cursor: Cursor { state.cursor }

    /// Drops prepared batches and continues from `cursor`.
    public func seek(to cursor: Cursor) {
        precondition(
            cursor.epoch >= 0 && (0..<batchesPerEpoch).contains(cursor.position),
            "Cursor \(cursor) is outside the \(batchesPerEpoch) batches of an epoch.")
        state.seek(to: cursor.epoch * batchesPerEpoch + cursor.position)
    }

    /// The next batch, waiting for the workers if it is not ready; epochs follow each other.
    ///
    /// - Throws: ``DataError`` when no image of the dataset can be read any more (files
    ///   removed or damaged while the run went on).
    public func next() throws -> Batch {
        let (number, batch) = try state.take()
        let cursor = Cursor(epoch: number / batchesPerEpoch, position: number % batchesPerEpoch)
        let views = zip(batch.storages, state.views).map { storage, view in
            Tensor(shape: [state.batchSize, 3, view.cropSize, view.cropSize], storage: storage)
        }
        let endsEpoch = cursor.position == batchesPerEpoch - 1
        if endsEpoch, case let skipped = skippedFileCount(epoch: cursor.epoch), skipped > 0 {
            DataWarning.report("epoch \(cursor.epoch) skipped \(skipped) unreadable images")
        }
        let labels = batch.labels.contains(nil) ? nil : batch.labels.map { $0! }
        return Batch(
            views: views, geometry: batch.geometry, labels: labels, indices: batch.indices, cursor: cursor, endsEpoch: endsEpoch)
    }

    /// How many images of `epoch` could not be read so far (final once the epoch's last batch
    /// has been delivered).
    public func skippedFileCount(epoch: Int) -> Int { state.skippedFileCount(epoch: epoch) }
}

/// A batch being filled by the workers.
private final class PendingBatch: @unchecked Sendable {
    let storages: [TensorStorage]
    /// `geometry[view][slot]`.
    var geometry: [[CropGeometry]]
    var labels: [Int?]
    var indices: [Int]
    var remaining: Int

    init(views: [ViewRecipe], batchSize: Int) {
        storages = views.map { TensorStorage(uninitializedCount: batchSize * 3 * $0.cropSize * $0.cropSize) }
        geometry = Array(repeating: Array(repeating: .wholeImage, count: batchSize), count: views.count)
        labels = Array(repeating: nil, count: batchSize)
        indices = Array(repeating: 0, count: batchSize)
        remaining = batchSize
    }
}

/// What the loader's threads share; every mutable property is guarded by `lock`.
private final class LoaderState: @unchecked Sendable {
    let dataset: any ImageDataset
    let recipe: MultiCropRecipe
    let views: [ViewRecipe]
    /// Whether any view is pasted onto a canvas (and so needs its batch's images as distractors).
    let pastes: Bool
    let batchSize: Int, seed: UInt64, rank: Int, worldSize: Int, batchesPerEpoch: Int, prefetchBatches: Int

    private let lock = ConditionLock()
    /// Bumped by every seek, so that work started before it is dropped.
    private var generation = 0
    /// The global number (epoch × batchesPerEpoch + position) of the next batch to deliver.
    private var nextDelivery = 0
    /// The next work item: a batch number and a slot in it.
    private var nextBatch = 0, nextSlot = 0
    private var pending: [Int: PendingBatch] = [:]
    private var permutations: [Int: [Int]] = [:]
    private var unreadable: Set<Int> = []
    private var skipped: [Int: Int] = [:]
    private var stopping = false
    /// Set when a worker found no readable image left; every later batch fails with it.
    private var failure: DataError?

    init(
        dataset: any ImageDataset, recipe: MultiCropRecipe, batchSize: Int, seed: UInt64, rank: Int, worldSize: Int,
        batchesPerEpoch: Int, prefetchBatches: Int
    ) {
        self.dataset = dataset
        self.recipe = recipe
        views = recipe.views
        pastes = recipe.views.contains { $0.pasteProbability > 0 }
        self.batchSize = batchSize
        self.seed = seed
        self.rank = rank
        self.worldSize = worldSize
        self.batchesPerEpoch = batchesPerEpoch
        self.prefetchBatches = prefetchBatches
    }

    var cursor: DataLoader.Cursor {
        lock.withLock {
            DataLoader.Cursor(epoch: nextDelivery / batchesPerEpoch, position: nextDelivery % batchesPerEpoch)
        }
    }

    func seek(to batch: Int) {
        lock.withLock {
            generation += 1
            pending.removeAll()
            nextDelivery = batch
            nextBatch = batch
            nextSlot = 0
            lock.broadcast()
        }
    }

    func stop() {
        lock.withLock {
            stopping = true
            lock.broadcast()
        }
    }

    func skippedFileCount(epoch: Int) -> Int { lock.withLock { skipped[epoch, default: 0] } }

    /// Waits for the next batch to be complete and removes it from the pending ones.
    func take() throws -> (number: Int, batch: PendingBatch) {
        try lock.withLock {
            let number = nextDelivery
            while failure == nil && pending[number]?.remaining != 0 {
                lock.wait()
            }
            if let failure { throw failure }
            let batch = pending.removeValue(forKey: number)!
            nextDelivery += 1
            let epoch = nextDelivery / batchesPerEpoch
            permutations = permutations.filter { $0.key >= epoch }
            lock.broadcast()
            return (number, batch)
        }
    }

    /// A worker thread's loop: claim a slot of a batch within the prefetch window, fill it,
    /// repeat until stopped.
    func work() {
        var item: (number: Int, slot: Int, generation: Int, batch: PendingBatch, order: [Int])?
        while true {
            item = lock.withLock {
                while !stopping && nextBatch >= nextDelivery + prefetchBatches { lock.wait() }
                if stopping { return nil }
                let number = nextBatch, slot = nextSlot
                nextSlot += 1
                if nextSlot == batchSize { (nextBatch, nextSlot) = (nextBatch + 1, 0) }
                let batch = pending[number] ?? PendingBatch(views: views, batchSize: batchSize)
                pending[number] = batch
                return (number, slot, generation, batch, permutation(epoch: number / batchesPerEpoch))
            }
            guard let item else { return }
            let result = produce(number: item.number, slot: item.slot, batch: item.batch, order: item.order)
            lock.withLock {
                guard item.generation == generation else { return }
                guard let result else {
                    failure = failure ?? DataError(
                        path: dataset.description, problem: "no image can be read any more (removed or damaged during the run)")
                    lock.broadcast()
                    return
                }
                item.batch.labels[item.slot] = result.label
                for (view, geometry) in result.geometry.enumerated() { item.batch.geometry[view][item.slot] = geometry }
                item.batch.indices[item.slot] = result.index
                if result.skipped { skipped[item.number / batchesPerEpoch, default: 0] += 1 }
                item.batch.remaining -= 1
                if item.batch.remaining == 0 { lock.broadcast() }
            }
        }
    }

    /// The seeded shuffle of the dataset for `epoch`; call holding the lock.
    private func permutation(epoch: Int) -> [Int] {
        if let order = permutations[epoch] { return order }
        var generator = RandomGenerator(seed: seed, path: [UInt64(epoch)])
        var order = Array(0..<dataset.count)
        order.shuffle(using: &generator)
        permutations[epoch] = order
        return order
    }

    /// Decodes the image of a slot (or the next readable one of the shuffle), makes its crops
    /// and writes them into the batch; `nil` when no image of the dataset can be read.
    private func produce(
        number: Int, slot: Int, batch: PendingBatch, order: [Int]
    ) -> (index: Int, label: Int?, skipped: Bool, geometry: [CropGeometry])? {
        let epoch = number / batchesPerEpoch
        let first = (number % batchesPerEpoch) * batchSize * worldSize + rank * batchSize
        let position = first + slot
        let sampleIndex = order[position]
        var generator = RandomGenerator(seed: seed, path: [UInt64(epoch), UInt64(sampleIndex)])
        // A paste draws its distractors from the batch, so that the step has every garment's own views.
        let companions = pastes
            ? BatchImages(dataset: dataset, indices: (first..<(first + batchSize)).map { order[$0 % order.count] }) : nil
        for offset in 0..<order.count {
            let index = order[(position + offset) % order.count]
            guard let image = readableImage(index) else { continue }
            var geometry: [CropGeometry] = []
            for (recipe, storage) in zip(views, batch.storages) {
                let crop = recipe.crop(image, distractors: companions, generator: &generator)
                let size = 3 * recipe.cropSize * recipe.cropSize
                recipe.normalization.write(crop.image, to: storage.base + slot * size)
                geometry.append(crop.geometry)
            }
            return (index, dataset.label(at: index), offset > 0, geometry)
        }
        return nil
    }

    /// The image at `index`, or `nil` (with a warning the first time) when it cannot be read.
    private func readableImage(_ index: Int) -> Image? {
        if lock.withLock({ unreadable.contains(index) }) { return nil }
        do {
            return try dataset.image(at: index)
        } catch {
            let isNew = lock.withLock { unreadable.insert(index).inserted }
            if isNew { DataWarning.report("skipping unreadable image: \(error)") }
            return nil
        }
    }
}

/// The images of one batch, numbered by their place in it: where ``RandomPaste`` draws the
/// distractors of a pasted crop in training, so that a distractor's number in
/// ``CanvasPictures`` is the batch position of the image it shows. (An image of the batch that
/// could not be read was replaced by the next readable one of the shuffle; a paste reading it
/// finds it unreadable and leaves its place to the background.)
struct BatchImages: ImageDataset {
    let dataset: any ImageDataset
    /// The dataset index of each batch position.
    let indices: [Int]

    var count: Int { indices.count }
    var classNames: [String] { dataset.classNames }
    var description: String { "a batch of \(dataset.description)" }
    func image(at index: Int) throws -> Image { try dataset.image(at: indices[index]) }
    func label(at index: Int) -> Int? { dataset.label(at: indices[index]) }
}
