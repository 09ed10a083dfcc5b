package dev.kiln.image;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;

/** Counts the bytes read from a source file, for progress. */
final class Counting extends FilterInputStream {
    private final Progress progress;

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
        super(in);
        this.progress = progress;
    }

    @Override
    public int read() throws IOException {
        int c = in.read();
        if (c >= 0) {
            progress.read++;
        }
        return c;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        int n = in.read(b, off, len);
        if (n > 0) {
            progress.read += n;
        }
        return n;
    }

    @Override
    public long skip(long n) throws IOException {
        long k = in.skip(n);
        if (k > 0) {
            progress.read += k;
        }
        return k;
    }
}
