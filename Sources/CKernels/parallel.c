#include "CKernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

// The compute kernels' worker threads: `threads − 1` threads that, after a region, spin for a
// short while before parking, so that the next region (a training step runs hundreds of them,
// tens to hundreds of microseconds apart) starts without waking a parked thread, which costs
// tens of microseconds on a virtual machine. The submitting thread runs chunks too.
//
// A region's description (function, context, chunk count) is published under a sequence lock:
// the submitter makes `sequence` odd while it writes the fields and even again (one more region)
// when they are complete; a worker copies them and keeps the copy only if `sequence` did not
// move meanwhile. Chunks are claimed from one 64-bit word holding the region's number (high
// half) and the next chunk (low half), so a worker still holding an earlier region's copy can
// never claim a chunk of a later region: its claim fails on the region number. A region starts
// only when every chunk of the previous one has finished.

#if defined(__x86_64__)
#include <immintrin.h>
#define SPIN_PAUSE() _mm_pause()
#else
#define SPIN_PAUSE() ((void)0)
#endif

enum {
    // How long a worker spins after a region before it parks, in nanoseconds (libgomp, which
    // PyTorch's CPU kernels run on, spins for some hundreds of microseconds too).
    WORKER_SPIN_NANOSECONDS = 200000,
    // Pauses the submitting thread spins for the workers' last chunks before it yields its core.
    SUBMITTER_SPINS = 1024,
};

static int64_t now_nanoseconds(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return (int64_t)time.tv_sec * 1000000000 + time.tv_nsec;
}

static struct {
    pthread_once_t once;
    int workers;
    pthread_mutex_t submitLock; // one region at a time; other submitters run their chunks alone

    _Atomic uint64_t sequence; // odd while a region is being described; region n is 2n
    _Atomic uint64_t claim;    // region number << 32 | next chunk
    _Atomic int64_t finished;
    _Atomic(ssl_chunk_function) function;
    _Atomic(void *) context;
    _Atomic int64_t chunks;

    pthread_mutex_t parkLock;
    pthread_cond_t parkCondition;
    _Atomic int sleepers;
} pool = {
    .once = PTHREAD_ONCE_INIT,
    .submitLock = PTHREAD_MUTEX_INITIALIZER,
    .parkLock = PTHREAD_MUTEX_INITIALIZER,
    .parkCondition = PTHREAD_COND_INITIALIZER,
};

// The workers start_workers makes: the first region's `threads` − 1 (every caller passes the same).
static _Atomic int requestedWorkers;

// Claims and runs chunks of region `region` until none is left.
static void run_chunks(uint64_t region, ssl_chunk_function function, void *context, int64_t chunks) {
    uint64_t tag = region & 0xFFFFFFFFu;
    for (;;) {
        uint64_t claim = atomic_load_explicit(&pool.claim, memory_order_acquire);
        do {
            if (claim >> 32 != tag || (int64_t)(claim & 0xFFFFFFFFu) >= chunks) return;
        } while (!atomic_compare_exchange_weak_explicit(&pool.claim, &claim, claim + 1, memory_order_acq_rel,
                                                        memory_order_acquire));
        function(context, (int64_t)(claim & 0xFFFFFFFFu));
        atomic_fetch_add_explicit(&pool.finished, 1, memory_order_acq_rel);
    }
}

// Waits until `sequence` differs from `seen` and is even: spinning, then parked.
static uint64_t next_sequence(uint64_t seen) {
    int64_t deadline = now_nanoseconds() + WORKER_SPIN_NANOSECONDS;
    for (int spin = 1;; spin++) {
        uint64_t sequence = atomic_load_explicit(&pool.sequence, memory_order_acquire);
        if (sequence != seen && sequence % 2 == 0) return sequence;
        if (spin % 64 == 0 && now_nanoseconds() > deadline) break;
        SPIN_PAUSE();
    }
    pthread_mutex_lock(&pool.parkLock);
    atomic_fetch_add(&pool.sleepers, 1);
    uint64_t sequence;
    while ((sequence = atomic_load(&pool.sequence)) == seen || sequence % 2 != 0) {
        pthread_cond_wait(&pool.parkCondition, &pool.parkLock);
    }
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.parkLock);
    return sequence;
}

static void *worker_main(void *unused) {
    (void)unused;
    uint64_t seen = atomic_load(&pool.sequence);
    for (;;) {
        uint64_t sequence = next_sequence(seen);
        ssl_chunk_function function = atomic_load_explicit(&pool.function, memory_order_relaxed);
        void *context = atomic_load_explicit(&pool.context, memory_order_relaxed);
        int64_t chunks = atomic_load_explicit(&pool.chunks, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&pool.sequence, memory_order_relaxed) != sequence) continue;
        seen = sequence;
        run_chunks(sequence / 2, function, context, chunks);
    }
    return NULL;
}

static void start_workers(void) {
    pool.workers = 0;
    int requested = atomic_load_explicit(&requestedWorkers, memory_order_relaxed);
    for (int index = 0; index < requested; index++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, worker_main, NULL) != 0) break;
        pthread_detach(thread);
        pool.workers++;
    }
}

void ssl_parallel_run(int64_t chunks, int threads, ssl_chunk_function function, void *context) {
    if (chunks <= 0) return;
    if (chunks == 1 || threads <= 1) {
        for (int64_t chunk = 0; chunk < chunks; chunk++) function(context, chunk);
        return;
    }
    atomic_store_explicit(&requestedWorkers, threads - 1, memory_order_relaxed);
    pthread_once(&pool.once, start_workers);
    // A region inside a region, or from another thread meanwhile, runs on its own thread.
    if (pool.workers == 0 || pthread_mutex_trylock(&pool.submitLock) != 0) {
        for (int64_t chunk = 0; chunk < chunks; chunk++) function(context, chunk);
        return;
    }
    uint64_t sequence = atomic_load_explicit(&pool.sequence, memory_order_relaxed);
    atomic_store_explicit(&pool.sequence, sequence + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&pool.function, function, memory_order_relaxed);
    atomic_store_explicit(&pool.context, context, memory_order_relaxed);
    atomic_store_explicit(&pool.chunks, chunks, memory_order_relaxed);
    atomic_store_explicit(&pool.finished, 0, memory_order_relaxed);
    uint64_t region = (sequence + 2) / 2;
    atomic_store_explicit(&pool.claim, (region & 0xFFFFFFFFu) << 32, memory_order_relaxed);
    atomic_store(&pool.sequence, sequence + 2); // publishes the fields above
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.parkLock);
        pthread_cond_broadcast(&pool.parkCondition);
        pthread_mutex_unlock(&pool.parkLock);
    }
    run_chunks(region, function, context, chunks);
    for (int spin = 0; atomic_load_explicit(&pool.finished, memory_order_acquire) < chunks; spin++) {
        if (spin < SUBMITTER_SPINS) {
            SPIN_PAUSE();
        } else {
            sched_yield();
        }
    }
    pthread_mutex_unlock(&pool.submitLock);
}
