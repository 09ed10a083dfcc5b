package dev.kiln.image;

import java.io.IOException;
import java.util.Arrays;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * What a source's reading thread (the {@code dir:} walker, the tar parser) shares with the
 * writer's thread: entries handed over in batches, in the order the writer takes them, and the
 * content of small files in one ring of bytes that the writer frees in the same order.
 */
final class ReadAhead {
    /** Files up to this size are read by the reading thread; larger ones are streamed by the writer's. */
    static final int FILE = 1 << 20;
    /**
     * At most this much content read ahead of the writer (at least {@link #FILE}). More does not
     * go faster: 8 and 4 MiB took the same times as 2 MiB on every bench corpus, with 2-6 MiB
     * more peak RSS.
     */
    static final int BYTES = 2 << 20;
    private static final int ENTRIES = 8192;

    private ReadAhead() {}

    /** A reading thread's work. */
    interface Work {
        void run() throws Exception;
    }

    /**
     * Starts the reading thread {@code name}: whatever {@code work} fails with, errors included,
     * reaches the writer's thread as {@code failed.apply(e)}, which waits for {@code end}.
     */
    static <T> Thread start(String name, Handoff<T> out, Work work, java.util.function.Function<Throwable, T> failed,
            T end) {
        Thread t = new Thread(() -> {
            try {
                work.run();
            } catch (Throwable e) {
                out.add(failed.apply(e));
            }
            out.add(end);
            out.flush();
        }, name);
        t.setDaemon(true);
        t.start();
        return t;
    }

    /** What the reading thread failed with, to be thrown on the writer's thread. */
    static IOException rethrown(Throwable e, String what) {
        if (e instanceof IOException io) {
            return io;
        }
        if (e instanceof RuntimeException re) {
            throw re;
        }
        if (e instanceof Error err) {
            throw err;
        }
        return new IOException(what + ": " + e, e);
    }

    /**
     * Read-ahead content in one array used round and round: the reader puts small files into it
     * in order and the writer consumes and frees them in the same order, so the free bytes
     * always follow the last file read. Reading each file into a new array made 1.4 GB of
     * garbage for the Linux tree, and the arrays still queued at a young collection were
     * promoted (peak RSS 200-280 MiB).
     */
    static final class Ring {
        /** The bytes, on the heap (null for an off-heap ring). */
        final byte[] buf;
        /** The bytes as a buffer: {@link #buf} wrapped, or off the heap, where a read(2) can put a file's content itself. */
        final java.nio.ByteBuffer mem;
        private final Semaphore free = new Semaphore(BYTES);

        /** A ring on the heap, for content read from streams. */
        Ring() {
            this(false);
        }

        /** {@code direct}: off the heap, for content read by system calls ({@link HostFd#readExactly}, a FileChannel). */
        Ring(boolean direct) {
            buf = direct ? null : new byte[BYTES];
            mem = direct ? java.nio.ByteBuffer.allocateDirect(BYTES) : java.nio.ByteBuffer.wrap(buf);
        }

        /** The {@code length} bytes at {@code offset}, as a buffer of their own. */
        java.nio.ByteBuffer slice(int offset, int length) {
            return mem.slice(offset, length);
        }
        /** Where the next file goes; the reading thread's alone. */
        private int tail;

        /**
         * Waits until {@code size} (at most {@link #FILE}) contiguous bytes are free and returns
         * {@code {offset, held}}: a file that does not fit before the end of the array starts at
         * 0, and the skipped end is held with it. Hands {@code out}'s batch over before waiting,
         * since the writer frees ring bytes only for entries it has.
         */
        int[] reserve(int size, Handoff<?> out) throws InterruptedException {
            boolean wrap = tail + size > BYTES;
            int skip = wrap ? BYTES - tail : 0;
            if (!free.tryAcquire(size + skip)) {
                out.flush();
                free.acquire(size + skip);
            }
            int offset = wrap ? 0 : tail;
            tail = offset + size;
            return new int[] {offset, size + skip};
        }

        /** Writer: frees what an entry held, in the order the entries came. */
        void release(int held) {
            if (held > 0) {
                free.release(held);
            }
        }

        /** Unblocks a reader waiting for space once the writer has stopped. */
        void abandon() {
            free.release(BYTES);
        }
    }

    /**
     * A file's content held in memory (the ring's bytes), as a stream for whoever reads one and
     * as a buffer for the writer, which takes it without copying it into its own array first
     * ({@link dev.kiln.ext4.Ext4Writer#file(String, dev.kiln.ext4.Metadata, java.nio.ByteBuffer)}).
     */
    static final class Held extends java.io.ByteArrayInputStream {
        Held(byte[] b, int offset, int length) {
            super(b, offset, length);
        }

        /** What is left to read, as a buffer over the same bytes. */
        java.nio.ByteBuffer remaining() {
            return java.nio.ByteBuffer.wrap(buf, pos, count - pos);
        }
    }

    /**
     * Entries go to the writer's thread in batches: one queue hand-off (a lock, and a wake-up of
     * the other thread) per 64 entries instead of per entry, which on 30,000 small files was 7 %
     * of the CPU time.
     */
    static final class Handoff<T> {
        private static final int BATCH = 64;
        private final BlockingQueue<T[]> queue = new ArrayBlockingQueue<>(ENTRIES / BATCH);
        private final AtomicBoolean stop;
        private final java.util.function.IntFunction<T[]> arrays;
        private T[] batch;
        private int n;

        Handoff(AtomicBoolean stop, java.util.function.IntFunction<T[]> arrays) {
            this.stop = stop;
            this.arrays = arrays;
            this.batch = arrays.apply(BATCH);
        }

        /** Reader: adds an entry, handing the batch over when it is full. */
        void add(T it) {
            batch[n++] = it;
            if (n == BATCH) {
                flush();
            }
        }

        /** Reader: hands over what it has (waits while the writer is a full queue behind). */
        void flush() {
            if (n == 0) {
                return;
            }
            T[] b = n == BATCH ? batch : Arrays.copyOf(batch, n);
            batch = arrays.apply(BATCH);
            n = 0;
            try {
                while (!queue.offer(b, 100, TimeUnit.MILLISECONDS)) {
                    if (stop.get()) { // the writer has stopped: kept for drain, never taken
                        left.add(b);
                        return;
                    }
                }
            } catch (InterruptedException e) {
                left.add(b);
                Thread.currentThread().interrupt();
            }
        }

        /** Batches handed over after the writer stopped. */
        private final java.util.concurrent.ConcurrentLinkedQueue<T[]> left = new java.util.concurrent.ConcurrentLinkedQueue<>();

        private T[] taken;
        private int next;

        /** Writer: the next entry, waiting for it; {@code what} names the source if interrupted. */
        T next(String what) throws java.io.InterruptedIOException {
            while (taken == null || next == taken.length) {
                try {
                    taken = queue.take();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException("interrupted while reading " + what);
                }
                next = 0;
            }
            return taken[next++];
        }

        /**
         * Writer: gives {@code each} every entry not taken yet: queued, and when {@code
         * readerDone} (the reader's thread has ended) those it had not handed over.
         */
        void drain(java.util.function.Consumer<T> each, boolean readerDone) {
            if (taken != null) {
                while (next < taken.length) {
                    each.accept(taken[next++]);
                }
            }
            for (java.util.Queue<T[]> q : java.util.List.of(queue, left)) {
                for (T[] b = q.poll(); b != null; b = q.poll()) {
                    for (T it : b) {
                        each.accept(it);
                    }
                }
            }
            if (readerDone) {
                for (int i = 0; i < n; i++) {
                    each.accept(batch[i]);
                }
                n = 0;
            }
        }

        /** Writer: drops what is queued once it has stopped. */
        void clear() {
            queue.clear();
        }
    }
}
