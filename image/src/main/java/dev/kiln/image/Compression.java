package dev.kiln.image;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;
import org.apache.commons.compress.compressors.xz.XZCompressorInputStream;

/** Recognises a compressed stream by its first bytes, never by its name. */
public final class Compression {
    private Compression() {}

    /**
     * Reads (and so decompresses) {@code in} on a second thread, half a megabyte ahead of the
     * consumer: reading and inflating the archive overlaps with writing the image. (The stream
     * keeps two buffers of this size; 1 MiB ones went no faster.)
     */
    public static InputStream readAhead(InputStream in) throws IOException {
        return org.apache.commons.io.input.ReadAheadInputStream.builder().setInputStream(in).setBufferSize(512 << 10).get();
    }

    /** Wraps {@code in} in a decompressor if its magic bytes say it is compressed. */
    public static InputStream decompress(InputStream raw) throws IOException {
        BufferedInputStream in = raw instanceof BufferedInputStream b ? b : new BufferedInputStream(raw, 1 << 16);
        in.mark(8);
        byte[] m = in.readNBytes(6);
        in.reset();
        if (m.length >= 2 && (m[0] & 0xFF) == 0x1F && (m[1] & 0xFF) == 0x8B) {
            return new BufferedInputStream(GzipCompressorInputStream.builder().setInputStream(in)
                    .setDecompressConcatenated(true).get(), 1 << 16);
        }
        if (m.length >= 6 && (m[0] & 0xFF) == 0xFD && m[1] == '7' && m[2] == 'z' && m[3] == 'X' && m[4] == 'Z' && m[5] == 0) {
            return new BufferedInputStream(XZCompressorInputStream.builder().setInputStream(in)
                    .setDecompressConcatenated(true).get(), 1 << 16);
        }
        if (m.length >= 4 && (m[0] & 0xFF) == 0x28 && (m[1] & 0xFF) == 0xB5 && (m[2] & 0xFF) == 0x2F && (m[3] & 0xFF) == 0xFD) {
            return new BufferedInputStream(zstdInput(in), 1 << 16);
        }
        if (m.length >= 3 && m[0] == 'B' && m[1] == 'Z' && m[2] == 'h') {
            return new BufferedInputStream(new BZip2CompressorInputStream(in, true), 1 << 16);
        }
        return in;
    }

    /**
     * zstd-jni's decoder when its jar is on the class path (optional native code: drop
     * {@code zstd-jni.jar} beside {@code kiln.jar}, whose manifest names it), unless
     * {@code -Dkiln.zstd=pure}; otherwise aircompressor's pure-Java one.
     */
    private static final java.lang.reflect.Constructor<?> NATIVE_ZSTD = nativeZstd();

    private static java.lang.reflect.Constructor<?> nativeZstd() {
        if ("pure".equals(System.getProperty("kiln.zstd"))) {
            return null;
        }
        try {
            return Class.forName("com.github.luben.zstd.ZstdInputStream").getConstructor(InputStream.class);
        } catch (ReflectiveOperationException | LinkageError e) {
            return null;
        }
    }

    /**
     * Whether zstd is decoded by zstd-jni's native library (see {@link #zstdInput}).
     *
     * @return true when zstd-jni is on the class path and not turned off
     */
    public static boolean usesNativeZstd() {
        return NATIVE_ZSTD != null;
    }

    /**
     * A zstd decoder (every frame of a concatenated stream): zstd-jni's native one when present,
     * else aircompressor's pure-Java one.
     */
    public static InputStream zstdInput(InputStream in) throws IOException {
        if (NATIVE_ZSTD != null) {
            try {
                return nativeErrorsAsZip((InputStream) NATIVE_ZSTD.newInstance(in));
            } catch (java.lang.reflect.InvocationTargetException e) {
                throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
            } catch (ReflectiveOperationException | LinkageError e) {
                // the native library does not load on this platform: the pure-Java decoder
            }
        }
        return pureZstdInput(in);
    }

    /**
     * aircompressor's pure-Java zstd decoder. Its errors for corrupt data are unchecked; they
     * become {@link java.util.zip.ZipException}s, which callers already report as damaged
     * compressed input.
     */
    public static InputStream pureZstdInput(InputStream in) {
        return translating(new io.airlift.compress.zstd.ZstdInputStream(in), e ->
                e instanceof io.airlift.compress.MalformedInputException || e instanceof IllegalStateException
                        ? corrupt(e.getMessage(), e) : null);
    }

    /**
     * A stream whose read errors pass through {@code corruptData}: what it maps to an exception
     * is thrown instead (a decoder's own "corrupt data" error becomes a ZipException); null
     * leaves the error as it was.
     */
    private static InputStream translating(InputStream in,
            java.util.function.Function<Exception, java.util.zip.ZipException> corruptData) {
        return new java.io.FilterInputStream(in) {
            @Override
            public int read() throws IOException {
                try {
                    return super.read();
                } catch (IOException | RuntimeException e) {
                    throw rethrow(e);
                }
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                try {
                    return super.read(b, off, len);
                } catch (IOException | RuntimeException e) {
                    throw rethrow(e);
                }
            }

            private IOException rethrow(Exception e) {
                java.util.zip.ZipException z = corruptData.apply(e);
                if (z != null) {
                    return z;
                }
                if (e instanceof RuntimeException r) {
                    throw r;
                }
                return (IOException) e;
            }
        };
    }

    /** A zstd encoder in pure Java (aircompressor, its default level 3). */
    public static java.io.OutputStream zstdOutput(java.io.OutputStream out) throws IOException {
        return new io.airlift.compress.zstd.ZstdOutputStream(out);
    }

    /** zstd-jni reports corrupt data as its own IOException; callers know ZipException for that. */
    private static InputStream nativeErrorsAsZip(InputStream in) {
        return translating(in, e -> e.getClass().getName().equals("com.github.luben.zstd.ZstdIOException")
                ? corrupt(e.getMessage(), e) : null);
    }

    private static java.util.zip.ZipException corrupt(String message, Exception cause) {
        java.util.zip.ZipException z = new java.util.zip.ZipException("corrupt zstd data: " + message);
        z.initCause(cause);
        return z;
    }
}
