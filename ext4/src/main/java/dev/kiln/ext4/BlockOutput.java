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
 */
final class BlockOutput implements Closeable {
    static final int BUFFER_BYTES = 4 << 20;
    private static final int BUFFERS = 3;

    private final FileChannel ch;
    private final ArrayDeque<ByteBuffer> free = new ArrayDeque<>();
    private final ArrayDeque<ByteBuffer> queue = new ArrayDeque<>();
    private final ArrayDeque<Long> positions = new ArrayDeque<>();
    private final Thread thread;
    private ByteBuffer cur;
    private long curPos;
    private int inFlight;
    private boolean closing;
    private IOException failure;

    BlockOutput(FileChannel ch) {
        this.ch = ch;
        for (int i = 0; i < BUFFERS; i++) {
            free.add(ByteBuffer.allocateDirect(BUFFER_BYTES));
        }
        this.thread = new Thread(this::run, "kiln-ext4-writer");
        thread.setDaemon(true);
        thread.start();
    }

    /** Writes {@code len} bytes of {@code b} at {@code pos}, eventually. */
    void write(byte[] b, int off, int len, long pos) throws IOException {
        while (len > 0) {
            if (cur != null && (pos != curPos + cur.position() || !cur.hasRemaining())) {
                flush();
            }
            if (cur == null) {
                cur = take();
                curPos = pos;
            }
            int n = Math.min(len, cur.remaining());
            cur.put(b, off, n);
            off += n;
            len -= n;
            pos += n;
        }
    }

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
            throw new IOException(failure.getMessage(), failure);
        }
    }

    private void run() {
        while (true) {
            ByteBuffer b;
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
                b = queue.poll();
                pos = positions.poll();
            }
            IOException err = null;
            try {
                while (b.hasRemaining()) {
                    pos += ch.write(b, pos);
                }
            } catch (IOException e) {
                err = e;
            }
            b.clear();
            synchronized (this) {
                if (err != null && failure == null) {
                    failure = err;
                }
                free.add(b);
                inFlight--;
                notifyAll();
            }
        }
    }

    /** Stops the background thread; writes not yet drained are dropped. */
    @Override
    public void close() {
        synchronized (this) {
            closing = true;
            queue.clear();
            positions.clear();
            notifyAll();
        }
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
