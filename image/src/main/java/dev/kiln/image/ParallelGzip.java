package dev.kiln.image;

import java.io.ByteArrayOutputStream;
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
                        new java.io.BufferedOutputStream(Files.newOutputStream(out), 1 << 16), md)) {
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
        Deque<Future<byte[]>> pending = new ArrayDeque<>();
        byte[] prev = null;
        byte[] cur = in.readNBytes(CHUNK);
        while (true) {
            byte[] next = cur.length == CHUNK ? in.readNBytes(CHUNK) : new byte[0];
            boolean last = next.length == 0;
            crc.update(cur);
            size += cur.length;
            byte[] data = cur;
            byte[] dict = prev == null ? null : Arrays.copyOfRange(prev, prev.length - Math.min(DICT, prev.length), prev.length);
            pending.add(pool.submit(() -> deflate(data, dict, last, level)));
            while (pending.size() >= window || (last && !pending.isEmpty())) {
                out.write(take(pending.poll()));
            }
            if (last) {
                break;
            }
            prev = cur;
            cur = next;
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

    private static byte[] take(Future<byte[]> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while compressing");
        } catch (ExecutionException e) {
            throw new IOException("compressing failed: " + e.getCause(), e.getCause());
        }
    }

    /** One chunk as raw deflate: ends with a sync flush (byte-aligned, not final) unless it is the last. */
    static byte[] deflate(byte[] data, byte[] dict, boolean last, int level) {
        Deflater d = new Deflater(level, true);
        try {
            if (dict != null && dict.length > 0) {
                d.setDictionary(dict);
            }
            d.setInput(data);
            ByteArrayOutputStream bos = new ByteArrayOutputStream(Math.max(64, data.length / 3));
            byte[] buf = new byte[64 << 10];
            if (last) {
                d.finish();
                while (!d.finished()) {
                    int n = d.deflate(buf);
                    bos.write(buf, 0, n);
                }
            } else {
                int n;
                do {
                    n = d.deflate(buf, 0, buf.length, Deflater.SYNC_FLUSH);
                    bos.write(buf, 0, n);
                } while (n == buf.length || !d.needsInput());
            }
            return bos.toByteArray();
        } finally {
            d.end();
        }
    }
}
