package dev.kiln.image;

import java.io.ByteArrayOutputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * Binary-safe PAX extended-header values.
 *
 * <p>commons-compress decodes every PAX value as UTF-8 text, which corrupts binary xattr values
 * ({@code SCHILY.xattr.security.capability} holds raw bytes). The tar stream is therefore read
 * through a {@link Recorder}; the bytes consumed while commons-compress reads one entry's headers
 * are parsed again here, and the raw {@code SCHILY.xattr.*} values replace the decoded ones.
 * Headers start at 512-byte boundaries of the archive, so they are found by position.
 */
final class PaxRecords {
    private static final int RECORD = 512;
    private static final int MAX_RECORDED = 64 << 20;
    private static final byte[] ZERO_RECORD = new byte[RECORD];

    private PaxRecords() {}

    /** The recorded bytes, parsed where they are (no copy for every entry). */
    private static final class Recording extends ByteArrayOutputStream {
        byte[] array() {
            return buf;
        }
    }

    /** Records what is read while recording is on, and counts every byte read. */
    static final class Recorder extends FilterInputStream {
        private long pos;
        private long start;
        private boolean on;
        private boolean eof;
        private final Recording buf = new Recording();

        Recorder(InputStream in) {
            super(in);
        }

        void start() {
            buf.reset();
            start = pos;
            on = true;
        }

        /** Stops recording: the records of the PAX headers read since {@link #start}, by name. */
        Map<String, byte[]> stop() {
            on = false;
            return records(buf.array(), buf.size(), start);
        }

        long startOffset() {
            return start;
        }

        /** Whether the underlying stream has ended. */
        boolean atEof() {
            return eof;
        }

        long position() {
            return pos;
        }

        @Override
        public int read() throws IOException {
            int c = in.read();
            if (c < 0) {
                eof = true;
            }
            if (c >= 0) {
                if (on && buf.size() < MAX_RECORDED) {
                    buf.write(c);
                }
                pos++;
            }
            return c;
        }

        /**
         * Reads {@code len} bytes unless the stream ends first. commons-compress (1.28) takes a
         * short read inside a sparse entry's data segment for the segment's end and goes on
         * with the next one, so a GNU sparse file read through a stream that returns what it
         * has (the read-ahead thread's) failed as "Truncated TAR archive"; full reads keep it right.
         */
        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = in.readNBytes(b, off, len);
            if (n == 0 && len > 0) {
                n = -1;
            }
            if (n < len) {
                eof = true;
            }
            if (n > 0) {
                if (on && buf.size() < MAX_RECORDED) {
                    buf.write(b, off, n);
                }
                pos += n;
            }
            return n;
        }

        @Override
        public long skip(long n) throws IOException {
            byte[] tmp = new byte[(int) Math.min(n, 8192)];
            long done = 0;
            while (done < n) {
                int r = read(tmp, 0, (int) Math.min(tmp.length, n - done));
                if (r < 0) {
                    break;
                }
                done += r;
            }
            return done;
        }

        @Override
        public boolean markSupported() {
            return false;
        }
    }

    /**
     * Every record of the entry's PAX headers with its value's raw bytes (commons-compress
     * decodes values as UTF-8, which loses names and xattr values that are not).
     */
    /**
     * The records in the first {@code length} bytes of {@code raw}; an entry without extended
     * headers (nearly all) gets the empty map, made once.
     */
    private static Map<String, byte[]> records(byte[] raw, int length, long startOffset) {
        Map<String, byte[]> out = Map.of();
        int off = (int) ((RECORD - startOffset % RECORD) % RECORD);
        while (off + RECORD <= length) {
            if (Arrays.mismatch(raw, off, off + RECORD, ZERO_RECORD, 0, RECORD) < 0) {
                off += RECORD;
                continue;
            }
            int type = raw[off + 156];
            if (type != 'x' && type != 'L' && type != 'K' && type != 'g') {
                return out; // the entry's own header (the usual case: no extended headers at all)
            }
            long size = size(raw, off);
            if (size < 0 || size > length) {
                return out;
            }
            int dataStart = off + RECORD;
            int dataEnd = (int) Math.min(length, dataStart + size);
            if (type == 'x') {
                if (out.isEmpty()) {
                    out = new TreeMap<>();
                }
                parse(raw, dataStart, dataEnd, out);
            } else if (type != 'L' && type != 'K' && type != 'g') {
                return out; // the entry's own header: its extended headers are all behind us
            }
            off = dataStart + (int) ((size + RECORD - 1) / RECORD * RECORD);
        }
        return out;
    }

    private static long size(byte[] h, int at) {
        if ((h[at + 124] & 0x80) != 0) {
            long v = 0;
            for (int i = 125; i < 136; i++) {
                v = (v << 8) | (h[at + i] & 0xFF);
            }
            return v;
        }
        long v = 0;
        for (int i = 124; i < 136; i++) {
            int c = h[at + i];
            if (c == 0 || c == ' ') {
                if (v > 0) {
                    break;
                }
                continue;
            }
            if (c < '0' || c > '7') {
                return -1;
            }
            v = v * 8 + (c - '0');
        }
        return v;
    }

    private static void parse(byte[] b, int start, int end, Map<String, byte[]> out) {
        int p = start;
        while (p < end) {
            int sp = p;
            long len = 0;
            while (sp < end && b[sp] >= '0' && b[sp] <= '9') {
                len = len * 10 + (b[sp] - '0');
                sp++;
            }
            if (sp >= end || b[sp] != ' ' || len <= 0 || p + len > end) {
                return;
            }
            int recEnd = (int) (p + len);
            int eq = sp + 1;
            while (eq < recEnd && b[eq] != '=') {
                eq++;
            }
            if (eq >= recEnd) {
                return;
            }
            String key = new String(b, sp + 1, eq - sp - 1, StandardCharsets.UTF_8);
            int valueEnd = b[recEnd - 1] == '\n' ? recEnd - 1 : recEnd;
            out.put(key, Arrays.copyOfRange(b, eq + 1, valueEnd));
            p = recEnd;
        }
    }
}
