package dev.kiln.image;

import java.io.IOException;
import java.io.InputStream;

/**
 * The data regions' bytes of a file's whole content, one after the other, as {@link
 * dev.kiln.ext4.Ext4Writer#file(String, dev.kiln.ext4.Metadata, long, long[], InputStream)} takes
 * them: the holes between the regions are passed over with {@code skip} (a file channel moves
 * its position, a sparse tar entry skips its zeros without making them), never read.
 */
final class RegionBytes extends InputStream {
    /** Moves the whole content's stream {@code n} bytes on without reading them. */
    @FunctionalInterface
    interface Skip {
        void skip(long n) throws IOException;
    }

    private final InputStream whole;
    private final long[] data;
    private final long size;
    private final Skip skip;
    private int at;
    private long pos;

    RegionBytes(InputStream whole, long[] data, long size, Skip skip) {
        this.whole = whole;
        this.data = data;
        this.size = size;
        this.skip = skip;
    }

    /** The bytes the regions hold below {@code size}. */
    static long total(long[] data, long size) {
        long t = 0;
        for (int i = 0; i < data.length && data[i] < size; i += 2) {
            t += Math.min(size, data[i] + data[i + 1]) - data[i];
        }
        return t;
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xFF;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) {
            return 0;
        }
        while (at < data.length && data[at] < size && pos >= Math.min(size, data[at] + data[at + 1])) {
            at += 2;
        }
        if (at >= data.length || data[at] >= size) {
            return -1;
        }
        if (pos < data[at]) {
            skip.skip(data[at] - pos);
            pos = data[at];
        }
        long end = Math.min(size, data[at] + data[at + 1]);
        int n = whole.read(b, off, (int) Math.min(len, end - pos));
        if (n > 0) {
            pos += n;
        }
        return n;
    }
}
