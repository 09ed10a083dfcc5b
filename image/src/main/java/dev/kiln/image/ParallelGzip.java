package dev.kiln.image;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/**
 * gzip on every core, as pigz does it: the input is cut into 1 MiB chunks, each deflated on its
 * own thread with the previous chunk's last 32 KiB as preset dictionary (so matches still reach
 * back across the cut) and ended with a sync flush, and the raw deflate pieces are concatenated
 * into one ordinary gzip member. The output depends only on the input and the level, never on
 * the number of threads or their timing, so builds stay reproducible.
 */
final class ParallelGzip {
    static final int CHUNK = 1 << 20;
    private static final int DICT = 32 << 10;

    private ParallelGzip() {}

    /**
     * Compresses {@code in} into {@code out} and returns the SHA-256 (hex) of what was written,
     * computed on the way out, so a checksum of the .gz costs no second read.
     */
    static String compress(Path in, Path out, int level) throws IOException {
        int threads = Math.max(1, Runtime.getRuntime().availableProcessors());
        ExecutorService pool = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "kiln-gzip");
            t.setDaemon(true);
            return t;
        });
        java.security.MessageDigest md;
        try {
            md = java.security.MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        try (InputStream is = Files.newInputStream(in);
                OutputStream os = new java.security.DigestOutputStream(
                        new java.io.BufferedOutputStream(Files.newOutputStream(out, java.nio.file.StandardOpenOption.WRITE,
                                java.nio.file.StandardOpenOption.TRUNCATE_EXISTING), 1 << 16), md)) {
            compress(is, os, level, pool, threads * 2);
        } finally {
            pool.shutdownNow();
        }
        return java.util.HexFormat.of().formatHex(md.digest());
    }

    static void compress(InputStream in, OutputStream out, int level, ExecutorService pool, int window)
            throws IOException {
        // Header: deflate, no name, no time (0), no extra flags, OS "Unix".
        out.write(new byte[] {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, 0, 3});
        CRC32 crc = new CRC32();
        long size = 0;
        // window chunks in flight and one read ahead (to know which chunk is the last); each
        // slot keeps its buffers and its Deflater from chunk to chunk, so compressing an image
        // makes no garbage (new arrays and a new Deflater for every MiB had the old generation
        // grow to ~450 MiB before a collection).
        Slot[] slots = new Slot[window + 1];
        for (int i = 0; i < slots.length; i++) {
            slots[i] = new Slot(level);
        }
        ZeroChunk zeros = new ZeroChunk(level);
        Deque<Future<Slot>> pending = new ArrayDeque<>();
        int at = 0;
        Slot cur = slots[at];
        cur.read(in);
        Slot prev = null;
        try {
            while (true) {
                Slot next = null;
                if (cur.length == CHUNK) {
                    next = slots[(at + 1) % slots.length];
                    next.read(in);
                }
                boolean last = next == null || next.length == 0;
                crc.update(cur.in, 0, cur.length);
                size += cur.length;
                cur.dict(prev);
                Slot job = cur;
                pending.add(pool.submit(() -> job.deflate(last, zeros)));
                while (pending.size() >= window || (last && !pending.isEmpty())) {
                    Slot done = take(pending.poll());
                    out.write(done.out, 0, done.outLength);
                }
                if (last) {
                    break;
                }
                prev = cur;
                cur = next;
                at = (at + 1) % slots.length;
            }
        } finally {
            // After a failure, the chunks still being compressed (a few MiB at most) finish
            // before their Deflaters are ended.
            for (Future<Slot> f : pending) {
                try {
                    f.get();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (ExecutionException e) {
                    // the failure that matters is already on its way out
                }
            }
            for (Slot sl : slots) {
                sl.deflater.end();
            }
        }
        byte[] trailer = new byte[8];
        int c = (int) crc.getValue();
        int s = (int) size;
        for (int i = 0; i < 4; i++) {
            trailer[i] = (byte) (c >>> (8 * i));
            trailer[4 + i] = (byte) (s >>> (8 * i));
        }
        out.write(trailer);
    }

    /** One chunk's input, the dictionary it is compressed with, its output and the Deflater that makes it. */
    static final class Slot {
        final byte[] in = new byte[CHUNK];
        final byte[] dict = new byte[DICT];
        int length;
        int dictLength;
        byte[] out = new byte[CHUNK / 2];
        int outLength;
        final Deflater deflater;

        Slot(int level) {
            deflater = new Deflater(level, true);
        }

        void read(InputStream from) throws IOException {
            length = from.readNBytes(in, 0, CHUNK);
        }

        /** The previous chunk's last 32 KiB, copied: that chunk's slot is refilled while this one may wait. */
        void dict(Slot prev) {
            dictLength = prev == null ? 0 : Math.min(DICT, prev.length);
            if (dictLength > 0) {
                System.arraycopy(prev.in, prev.length - dictLength, dict, 0, dictLength);
            }
        }

        /** Raw deflate of the chunk: ends with a sync flush (byte-aligned, not final) unless it is the last. */
        Slot deflate(boolean last, ZeroChunk zeros) {
            if (!last && length == CHUNK && dictLength == DICT && allZero(in, CHUNK) && allZero(dict, DICT)) {
                byte[] z = zeros.get();
                out = z.length > out.length ? new byte[z.length] : out;
                System.arraycopy(z, 0, out, 0, z.length);
                outLength = z.length;
                return this;
            }
            outLength = deflateInto(deflater, in, length, dictLength > 0 ? dict : null, dictLength, last, this);
            return this;
        }

        void ensure(int more) {
            if (outLength + more > out.length) {
                out = Arrays.copyOf(out, Math.max(out.length * 2, outLength + more));
            }
        }
    }

    /**
     * What an all-zero chunk after an all-zero dictionary compresses to, computed once: zlib's
     * output depends only on its input and level, and an image is mostly such chunks (minbase
     * in 512 MiB: 300 of them, 1.4 CPU-s of deflating the same bytes).
     */
    static final class ZeroChunk {
        private final int level;
        private volatile byte[] bytes;

        ZeroChunk(int level) {
            this.level = level;
        }

        byte[] get() {
            byte[] b = bytes;
            if (b == null) {
                synchronized (this) {
                    b = bytes;
                    if (b == null) {
                        Slot s = new Slot(level);
                        try {
                            s.length = CHUNK;
                            s.dictLength = DICT;
                            s.outLength = deflateInto(s.deflater, s.in, CHUNK, s.dict, DICT, false, s);
                            b = Arrays.copyOf(s.out, s.outLength);
                            bytes = b;
                        } finally {
                            s.deflater.end();
                        }
                    }
                }
            }
            return b;
        }
    }

    private static final byte[] ZEROS = new byte[CHUNK];

    private static boolean allZero(byte[] b, int len) {
        return Arrays.mismatch(b, 0, len, ZEROS, 0, len) < 0;
    }

    private static Slot take(Future<Slot> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while compressing");
        } catch (ExecutionException e) {
            throw new IOException("compressing failed: " + e.getCause(), e.getCause());
        }
    }

    /** One chunk as raw deflate into {@code to.out}, with a reset Deflater; returns the output's length. */
    static int deflateInto(Deflater d, byte[] data, int length, byte[] dict, int dictLength, boolean last, Slot to) {
        d.reset();
        if (dict != null && dictLength > 0) {
            d.setDictionary(dict, 0, dictLength);
        }
        d.setInput(data, 0, length);
        to.outLength = 0;
        if (last) {
            d.finish();
            while (!d.finished()) {
                to.ensure(64 << 10);
                to.outLength += d.deflate(to.out, to.outLength, to.out.length - to.outLength);
            }
        } else {
            int n;
            do {
                to.ensure(64 << 10);
                int room = to.out.length - to.outLength;
                n = d.deflate(to.out, to.outLength, room, Deflater.SYNC_FLUSH);
                to.outLength += n;
                if (n < room) {
                    // zlib filled less than it was given: with SYNC_FLUSH that means all input
                    // is consumed and flushed
                    if (d.needsInput()) {
                        break;
                    }
                }
            } while (true);
        }
        return to.outLength;
    }
}
