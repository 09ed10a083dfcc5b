package dev.kiln.ext4;

import java.io.Closeable;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.ArrayDeque;

/**
 * The image file as the writer sees it: positional writes are gathered into large sequential
 * writes (file data is allocated mostly in ascending order, so thousands of small files become
 * a few writes of megabytes) and handed to a background thread, so the kernel's copying into
 * the page cache runs on another core while the writer reads and encodes the next files.
 * Writes happen in the order they were made; {@link #drain()} waits for all of them (before
 * reading the file back, truncating or syncing it).
 *
 * <p>Where the file system allows it, aligned writes bypass the page cache (O_DIRECT): on the
 * virtual machines kiln is built for, copying into the page cache costs several times more than
 * the device write itself (1.4 GB: 3.3 s buffered + 0.5 s fsync against 0.6 s direct), and an
 * image is written once and not read again by the build. Unaligned writes (block sizes below
 * the file system's, the odd partial run) go through the page cache; the kernel keeps the two
 * coherent, and one thread does both in order.
 */
final class BlockOutput implements Closeable {
    /**
     * Three buffers of 1 MiB: with 2 or 4 MiB each, large builds (the Linux tree's 1.4 GB
     * included) went no faster and peak RSS was 3-9 MiB higher (bench corpora, interleaved runs).
     */
    static final int BUFFER_BYTES = 1 << 20;
    private static final int BUFFERS = 3;
    /**
     * With flushing ahead, a background {@code fdatasync} after every this many bytes written
     * through the page cache. A flush costs what was written since the last one (the Debian
     * base's 200 MB: 0.23 s at the end of the build), so the build waits only for the last
     * piece; with 16 MiB a synced build took as long as one not synced (4 and 64 MiB measured
     * too: 64 left the small builds' final flush in full).
     */
    static final long FLUSH_AHEAD_BYTES = 16 << 20;

    private final FileChannel ch;
    private final FileChannel direct;
    private final int align;
    private boolean useDirect;
    private final ArrayDeque<ByteBuffer> free = new ArrayDeque<>();
    /** What the background thread writes next, in order: full buffers and {@link Transfer}s. */
    private final ArrayDeque<Object> queue = new ArrayDeque<>();
    private final ArrayDeque<Long> positions = new ArrayDeque<>();
    private final Thread thread;
    private ByteBuffer cur;
    private long curPos;
    private int inFlight;
    private boolean closing;
    private IOException failure;
    private final boolean flushAhead;
    /** The background thread's: bytes written since the last flush started, and that flush. */
    private long unflushed;
    private Thread flusher; // guarded by this

    /**
     * With {@code path}, aligned writes use a second, O_DIRECT channel when the file system
     * supports it; with {@code flushAhead}, what goes through the page cache is flushed in the
     * background every {@link #FLUSH_AHEAD_BYTES} (O_DIRECT writes are at the device already,
     * and a flush beside them only slowed them down).
     */
    BlockOutput(FileChannel ch, java.nio.file.Path path, boolean flushAhead) {
        this.ch = ch;
        this.flushAhead = flushAhead;
        FileChannel d = null;
        int a = 1;
        if (path != null) {
            try {
                a = (int) java.nio.file.Files.getFileStore(path).getBlockSize();
                if (a > 0 && a <= 65536 && Integer.bitCount(a) == 1) {
                    d = FileChannel.open(path, java.nio.file.StandardOpenOption.WRITE, com.sun.nio.file.ExtendedOpenOption.DIRECT);
                }
            } catch (IOException | UnsupportedOperationException e) {
                d = null; // tmpfs and some others refuse O_DIRECT: the page cache it is
            }
        }
        this.direct = d;
        this.useDirect = d != null;
        this.align = d == null ? 1 : a;
        // One buffer here, the others on the writing thread as it starts: a direct buffer is
        // zeroed when made, and the first touch of fresh memory is slow on some VMs (3 MiB took
        // 11-18 ms before the build wrote anything); the first buffer takes a while to fill.
        free.add(newBuffer());
        this.thread = new Thread(this::run, "kiln-ext4-writer");
        thread.setDaemon(true);
        thread.start();
    }

    /** Whether writes go past the page cache (O_DIRECT), so reading them back should too. */
    boolean direct() {
        return direct != null;
    }

    /** Writes {@code len} bytes of {@code b} at {@code pos}, eventually. */
    void write(byte[] b, int off, int len, long pos) throws IOException {
        write(ByteBuffer.wrap(b), off, len, pos);
    }

    /** Writes {@code len} bytes of {@code b} from index {@code off} at {@code pos}, eventually ({@code b} is not moved). */
    void write(ByteBuffer b, int off, int len, long pos) throws IOException {
        while (len > 0) {
            if (cur != null && (pos != curPos + cur.position() || !cur.hasRemaining())) {
                flush();
            }
            if (cur == null) {
                cur = take();
                curPos = pos;
            }
            int n = Math.min(len, cur.remaining());
            int at = cur.position();
            cur.put(at, b, off, n);
            cur.position(at + n);
            off += n;
            len -= n;
            pos += n;
        }
    }

    /**
     * Copies {@code len} bytes of {@code source} from {@code from} to {@code pos} of the image,
     * eventually, in order with the writes around it, inside the kernel
     * ({@link FileChannel#transferTo}: {@code sendfile}, or {@code copy_file_range} on newer
     * runtimes, which on a file system with shared extents may copy nothing at all), so the
     * bytes never pass through this process. The caller keeps {@code source} open until the
     * next {@link #drain()} or hands it to {@link #closeAfter}; a source shorter than asked for
     * fails the build, with {@code name} in the message.
     */
    void transfer(FileChannel source, String name, long from, long len, long pos) throws IOException {
        flush();
        synchronized (this) {
            check();
            queue.add(new Transfer(source, name, from, len));
            positions.add(pos);
            inFlight++;
            notifyAll();
        }
    }

    /**
     * Closes {@code c} once everything written before this is in the image (the source of
     * {@link #transfer}s); at once if the output has failed or been closed.
     */
    void closeAfter(java.io.Closeable c) {
        synchronized (this) {
            if (failure == null && !closing) {
                queue.add(c);
                positions.add(-1L);
                inFlight++;
                notifyAll();
                return;
            }
        }
        close(c); // the failure that stopped the output is the one reported
    }

    /** A copy from a host file into the image, made by the background thread. */
    private record Transfer(FileChannel source, String name, long from, long len) {}

    /** Waits until every write made so far is in the file. */
    void drain() throws IOException {
        flush();
        synchronized (this) {
            while (inFlight > 0 && failure == null) {
                await();
            }
            check();
        }
    }

    /**
     * {@link #drain()}, then waits for a background flush still running: its failure is thrown
     * here, since the file's next {@code fdatasync} may no longer report it (the kernel reports a
     * write-back error once).
     */
    void drainAndFlushes() throws IOException {
        drain();
        Thread f;
        synchronized (this) {
            f = flusher;
        }
        if (f != null) {
            try {
                f.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while flushing the image");
            }
        }
        synchronized (this) {
            check();
        }
    }

    private void flush() throws IOException {
        if (cur == null) {
            return;
        }
        ByteBuffer b = cur;
        cur = null;
        if (b.position() == 0) {
            synchronized (this) {
                free.add(b);
            }
            return;
        }
        b.flip();
        synchronized (this) {
            check();
            queue.add(b);
            positions.add(curPos);
            inFlight++;
            notifyAll();
        }
    }

    private synchronized ByteBuffer take() throws IOException {
        while (free.isEmpty() && failure == null) {
            await();
        }
        check();
        return free.poll();
    }

    private void await() throws InterruptedIOException {
        try {
            wait();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while writing the image");
        }
    }

    private void check() throws IOException {
        if (failure != null) {
            // A source that ended early is bad input, not a failed write: the type says so.
            IOException e = failure instanceof java.io.EOFException ? new java.io.EOFException(failure.getMessage())
                    : new IOException(failure.getMessage());
            e.initCause(failure);
            throw e;
        }
    }

    private ByteBuffer newBuffer() {
        return ByteBuffer.allocateDirect(BUFFER_BYTES + align).alignedSlice(align).limit(BUFFER_BYTES).slice();
    }

    private void run() {
        for (int i = 1; i < BUFFERS; i++) {
            ByteBuffer b;
            try {
                b = newBuffer();
            } catch (OutOfMemoryError e) {
                synchronized (this) {
                    if (failure == null) {
                        failure = new IOException("no memory for the image's write buffers: " + e.getMessage());
                    }
                    notifyAll();
                }
                break; // the writes already queued still go out; take() reports the failure
            }
            synchronized (this) {
                free.add(b);
                notifyAll();
            }
        }
        while (true) {
            Object op;
            long pos;
            synchronized (this) {
                while (queue.isEmpty() && !closing) {
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                if (queue.isEmpty()) {
                    return;
                }
                op = queue.poll();
                pos = positions.poll();
            }
            IOException err = null;
            ByteBuffer freed = null;
            long paged = 0; // bytes that went through the page cache, for the flush ahead
            try {
                if (op instanceof ByteBuffer buf) {
                    freed = buf;
                    paged = buf.remaining();
                    if (write(buf, pos)) {
                        paged = 0;
                    }
                } else if (op instanceof Transfer t) {
                    paged = t.len();
                    transfer(t, pos);
                } else {
                    close((java.io.Closeable) op);
                }
            } catch (IOException e) {
                err = e;
            }
            if (freed != null) {
                freed.clear();
            }
            synchronized (this) {
                if (err != null && failure == null) {
                    failure = err;
                }
                if (freed != null) {
                    free.add(freed);
                }
                inFlight--;
                notifyAll();
            }
            if (flushAhead) {
                unflushed += paged;
            }
            flushAheadIfDue();
        }
    }

    /** Writes {@code b} at {@code pos}; true if it went past the page cache (O_DIRECT). */
    private boolean write(ByteBuffer b, long pos) throws IOException {
        if (useDirect && pos % align == 0 && b.remaining() % align == 0) {
            try {
                long p = pos;
                while (b.hasRemaining()) {
                    p += direct.write(b, p);
                }
                return true;
            } catch (IOException e) {
                // Some file systems accept O_DIRECT at open and refuse the writes
                // (EINVAL): write this and everything after through the page cache.
                useDirect = false;
                b.rewind();
            }
        }
        while (b.hasRemaining()) {
            pos += ch.write(b, pos);
        }
        return false;
    }

    /** A source whose copies are all made ({@link #closeAfter}). */
    private static void close(java.io.Closeable c) {
        try {
            c.close();
        } catch (IOException e) {
            // a source read to the end: nothing of the image depends on its close
        }
    }

    /**
     * One {@link Transfer}: {@code transferTo} writes at the image channel's position, which only
     * this thread moves (every other write names its position).
     */
    private void transfer(Transfer t, long pos) throws IOException {
        long done = 0;
        ch.position(pos);
        while (done < t.len()) {
            long n = t.source().transferTo(t.from() + done, t.len() - done, ch);
            if (n <= 0) {
                throw new java.io.EOFException(t.name() + ": content ended after " + (t.from() + done)
                        + " bytes while it was copied (changed during the build?)");
            }
            done += n;
        }
    }

    private void flushAheadIfDue() {
        if (unflushed >= FLUSH_AHEAD_BYTES && (flusher == null || !flusher.isAlive())) {
            unflushed = 0;
            Thread f = new Thread(this::flushWritten, "kiln-ext4-flush");
            f.setDaemon(true);
            f.start();
            synchronized (this) {
                flusher = f;
            }
        }
    }

    /** {@code fdatasync} of what is written so far; a failure fails the next write or drain. */
    private void flushWritten() {
        try {
            ch.force(false);
        } catch (IOException e) {
            synchronized (this) {
                if (failure == null && !closing) {
                    failure = e;
                }
                notifyAll();
            }
        }
    }

    /** Stops the background thread; writes (and transfers) not yet drained are dropped. */
    @Override
    public void close() {
        synchronized (this) {
            closing = true;
            for (Object op : queue) {
                if (op instanceof java.io.Closeable c) {
                    close(c); // dropped with the writes around it
                }
            }
            queue.clear();
            positions.clear();
            notifyAll();
        }
        try {
            thread.join();
            Thread f;
            synchronized (this) {
                f = flusher;
            }
            if (f != null) {
                f.join(); // it uses the channel, which the writer closes next
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (direct != null) {
            try {
                direct.close();
            } catch (IOException e) {
                // nothing was pending on it
            }
        }
    }
}
