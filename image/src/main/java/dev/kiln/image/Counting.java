package dev.kiln.image;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;

/**
 * Counts the bytes read from a source file, for progress; and, given the file's length, answers
 * {@link #available()} from its own count.
 */
final class Counting extends FilterInputStream {
    private final Progress progress;
    /** The stream's length in bytes, or -1 when unknown. */
    private final long length;
    /** Bytes read or skipped through this stream. */
    private long position;

    /** A shared counter against a known total. */
    static final class Progress {
        volatile long read;
        volatile long total;

        double fraction() {
            long t = total;
            return t <= 0 ? -1 : Math.min(1.0, (double) read / t);
        }
    }

    Counting(InputStream in, Progress progress) {
        this(in, progress, -1);
    }

    /** {@code length}: what the stream holds (a regular file's size), or -1 when unknown. */
    Counting(InputStream in, Progress progress, long length) {
        super(in);
        this.progress = progress;
        this.length = length;
    }

    /**
     * What is left of a stream of known length, without asking the file: a file channel's
     * stream answers with an {@code fstat} and an {@code lseek}, and commons-compress's tar reader
     * asks on every skip (twice an entry here), as does a buffered stream after a short read; on
     * the Linux tree's 75,000 entries that was ~0.6 s of the parsing thread's 1.8 s (wall).
     */
    @Override
    public int available() throws IOException {
        if (length < 0) {
            return in.available();
        }
        return (int) Math.min(Integer.MAX_VALUE, Math.max(0, length - position));
    }

    @Override
    public int read() throws IOException {
        int c = in.read();
        if (c >= 0) {
            position++;
            progress.read++;
        }
        return c;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        int n = in.read(b, off, len);
        if (n > 0) {
            position += n;
            progress.read += n;
        }
        return n;
    }

    @Override
    public long skip(long n) throws IOException {
        long k = in.skip(n);
        if (k > 0) {
            position += k;
            progress.read += k;
        }
        return k;
    }
}
