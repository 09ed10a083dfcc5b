package dev.kiln.ext4;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.BitSet;

/**
 * SHA-256 of an image whose written regions are known: unwritten chunks are zeros and are
 * hashed from memory; written runs are read in large pieces on a reader thread, so reading and
 * the digest work at the same time: from the page cache, where the writer left them, or with
 * O_DIRECT when they were written with it (a buffered read would fill the cache from the device).
 */
final class ImageDigest {
    /**
     * A read's size: 4 MiB, or 1 MiB when less than {@link #SMALL} was written (through the page
     * cache): two 4 MiB buffers cost a small build ~24 ms of zeroing and first touches (wall
     * profile, the Nex-sized 150 MiB image) and 5-6 MiB of peak RSS (Debian's minbase, 200 MB
     * written: the same time, 75 CPU-ms less); on the Linux tree's 1.4 GB the two sizes measured
     * within the noise of each other.
     */
    private static final int PIECE = 4 << 20;
    private static final int SMALL_PIECE = 1 << 20;
    private static final long SMALL = 512L << 20;
    private static final byte[] ZEROS = new byte[1 << 20];

    private ImageDigest() {}

    static byte[] sha256(Path image, long length, BitSet written, int chunk, boolean direct) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        long writtenBytes = (long) written.cardinality() * chunk;
        try (Reader reader = new Reader(image, direct, writtenBytes < SMALL)) {
            long pos = 0;
            int c = 0;
            long chunks = (length + chunk - 1) / chunk;
            while (c < chunks) {
                boolean w = written.get(c);
                int end = w ? written.nextClearBit(c) : written.nextSetBit(c);
                if (end < 0 || end > chunks) {
                    end = (int) chunks;
                }
                long runEnd = Math.min(length, (long) end * chunk);
                if (w) {
                    reader.digest(md, pos, runEnd);
                } else {
                    for (long z = pos; z < runEnd; z += ZEROS.length) {
                        md.update(ZEROS, 0, (int) Math.min(ZEROS.length, runEnd - z));
                    }
                }
                pos = runEnd;
                c = end;
            }
        }
        return md.digest();
    }

    /** Reads runs of the image, one piece ahead of the digest. */
    private static final class Reader implements AutoCloseable {
        private final FileChannel ch;
        private final boolean direct;
        private final ByteBuffer[] bufs = new ByteBuffer[2];
        private final int piece;
        /**
         * Where a piece is copied for the digest: {@code MessageDigest.update(ByteBuffer)} on a
         * direct buffer copies it into a 4 KiB array and digests it 4 KiB a call, which took
         * twice as long as one copy and one call a piece.
         */
        private final byte[] scratch;
        private final java.util.concurrent.ExecutorService io =
                java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
                    Thread t = new Thread(r, "kiln-digest-read");
                    t.setDaemon(true);
                    return t;
                });

        /**
         * With {@code direct} (the image was written with O_DIRECT), reads with it where allowed;
         * {@code small}: little to read.
         */
        Reader(Path image, boolean direct, boolean small) throws IOException {
            FileChannel d = null;
            try {
                if (direct) {
                    d = FileChannel.open(image, StandardOpenOption.READ, com.sun.nio.file.ExtendedOpenOption.DIRECT);
                }
            } catch (IOException | UnsupportedOperationException e) {
                d = null; // tmpfs and others: buffered reads
            }
            this.direct = d != null;
            this.ch = d != null ? d : FileChannel.open(image, StandardOpenOption.READ);
            this.piece = small && !this.direct ? SMALL_PIECE : PIECE;
            for (int i = 0; i < 2; i++) {
                // 64 KiB alignment serves every device's direct-I/O block size.
                bufs[i] = ByteBuffer.allocateDirect(piece + (64 << 10)).alignedSlice(64 << 10).limit(piece).slice();
            }
            this.scratch = new byte[piece];
        }

        /** Feeds bytes [from, to) of the image to the digest. */
        void digest(MessageDigest md, long from, long to) throws IOException {
            int i = 0;
            java.util.concurrent.Future<ByteBuffer> next = read(bufs[i], from, to);
            for (long p = from; p < to; ) {
                ByteBuffer b = await(next);
                long after = p + b.remaining();
                i ^= 1;
                next = after < to ? read(bufs[i], after, to) : null;
                int n = b.remaining();
                b.get(scratch, 0, n);
                md.update(scratch, 0, n);
                p = after;
            }
        }

        private java.util.concurrent.Future<ByteBuffer> read(ByteBuffer b, long pos, long to) {
            return io.submit(() -> {
                b.clear();
                int want = (int) Math.min(piece, to - pos);
                // Direct reads need whole aligned blocks: read up to the alignment, keep what was asked.
                b.limit(direct ? (int) Math.min(piece, ((want + 4095L) / 4096) * 4096) : want);
                long p = pos;
                while (b.hasRemaining()) {
                    int n = ch.read(b, p);
                    if (n < 0) {
                        break;
                    }
                    p += n;
                }
                if (b.position() < want) {
                    throw new IOException("the image ended at byte " + p + " while reading it back");
                }
                b.flip();
                b.limit(want);
                return b;
            });
        }

        private static ByteBuffer await(java.util.concurrent.Future<ByteBuffer> f) throws IOException {
            try {
                return f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while hashing the image");
            } catch (java.util.concurrent.ExecutionException e) {
                throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
            }
        }

        @Override
        public void close() throws IOException {
            io.shutdownNow();
            ch.close();
        }
    }
}
