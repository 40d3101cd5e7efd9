#if canImport(Glibc)
import Glibc
#endif

/// A mutex with a condition variable (pthreads), for threads that wait for each other's work.
final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` holding the mutex.
    func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Releases the mutex until another thread broadcasts; call only inside ``withLock(_:)``.
    func wait() { pthread_cond_wait(condition, mutex) }

    /// Wakes every waiting thread; call only inside ``withLock(_:)``.
    func broadcast() { pthread_cond_broadcast(condition) }
}

/// Dedicated threads for long-running loops, apart from the compute kernels' workers
/// (``Parallel``), which must be free whenever a kernel splits its work.
enum WorkerThreads {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts a thread running `body`.
    static func start(_ body: @escaping @Sendable () -> Void) -> pthread_t {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        precondition(status == 0, "pthread_create failed (\(status)).")
        return thread
    }

    /// Waits for `thread` to finish.
    static func join(_ thread: pthread_t) {
        pthread_join(thread, nil)
    }
}
