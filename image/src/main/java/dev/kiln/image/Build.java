package dev.kiln.image;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Writer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.zip.Deflater;

/**
 * One build: sources applied in order into a new image, written atomically to the output
 * (temporary file, then rename), gzip-compressed when the name ends in {@code .gz}, with a
 * {@code sha256sum -c} compatible {@code .sha256} file beside it. A failed build leaves neither.
 */
public final class Build {
    private final List<Source> sources;
    private final Ext4Options options;
    private final Path output;
    private final boolean checksumFile;
    private final boolean digest;
    private final Progress progress;
    private final boolean verify;
    private final ImageCheck check;

    /** Progress events; the library never prints. */
    public interface Progress {
        /**
         * A source starts; {@code writer} can be polled for counts and {@code source} for the
         * fraction read while it runs.
         */
        default void source(int index, int total, Source source, Ext4Writer writer) {}

        /** The image is being finished (metadata, compression, checksum). */
        default void finishing(String what) {}
    }

    /** What the build produced; {@code sha256} is null when neither a checksum file nor a digest was asked for. */
    public record Result(Path output, String sha256, long bytes, Ext4Writer.Summary summary) {}

    private Build(Builder b) {
        this.sources = List.copyOf(b.sources);
        this.options = Objects.requireNonNull(b.options, "options");
        this.output = Objects.requireNonNull(b.output, "output");
        this.checksumFile = b.checksumFile;
        this.digest = b.digest || b.checksumFile;
        this.progress = b.progress;
        this.verify = b.verify;
        this.check = b.check;
    }

    public static Builder builder() {
        return new Builder();
    }

    private static final java.util.Set<Object> TEMPORARY = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /** Registers a temporary file or directory to be removed if the process is interrupted. */
    static void track(Path p) {
        TEMPORARY.add(p);
    }

    /** Registers a clean-up (ending helper processes, removing what they made) to run if the process is interrupted. */
    static void track(Runnable cleanup) {
        TEMPORARY.add(cleanup);
    }

    /** Registers a clean-up to run if the process is interrupted (for callers outside this package). */
    public static void trackCleanup(Runnable cleanup) {
        TEMPORARY.add(cleanup);
    }

    /** Forgets a registered file or clean-up. */
    public static void untrack(Object p) {
        TEMPORARY.remove(p);
    }

    /**
     * Set once {@link #removeTemporaryFiles()} has run: the process is ending, so no new temporary
     * file may be made (it would outlive the clean-up). Guarded by {@link #TEMPORARY}.
     */
    private static boolean ending;

    /**
     * Removes the temporary files of builds still running and ends their helper processes; for
     * a shutdown hook, so an interrupted build (Ctrl-C) leaves nothing behind either. A build
     * still running meanwhile cannot make a new temporary file afterwards ({@link #temporary}),
     * nor bring back one removed here (its writes open existing files only).
     */
    public static void removeTemporaryFiles() {
        synchronized (TEMPORARY) {
            ending = true;
            for (Object o : TEMPORARY) {
                try {
                    if (o instanceof Runnable r) {
                        r.run();
                    } else {
                        deleteTree((Path) o);
                    }
                } catch (RuntimeException e) {
                    // best effort while the process ends
                }
            }
        }
    }

    /** For tests that run {@link #removeTemporaryFiles()} in a process that goes on: temporary files may be made again. */
    static void resumeAfterRemovingTemporaryFiles() {
        synchronized (TEMPORARY) {
            ending = false;
        }
    }

    /** Removes a file or a tree, as far as this process may; best effort. */
    static void deleteTree(Path p) {
        try {
            if (Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                try (var walk = Files.walk(p)) {
                    walk.sorted(java.util.Comparator.reverseOrder()).forEach(x -> x.toFile().delete());
                }
            } else {
                Files.deleteIfExists(p);
            }
        } catch (IOException | RuntimeException e) {
            // what remains is reported by the caller
        }
    }

    public static final class Builder {
        private final List<Source> sources = new ArrayList<>();
        private Ext4Options options;
        private Path output;
        private boolean checksumFile = true;
        private boolean digest;
        private Progress progress = new Progress() {};
        private boolean verify;
        private ImageCheck check;

        public Builder source(Source s) {
            sources.add(Objects.requireNonNull(s));
            return this;
        }

        public Builder options(Ext4Options o) {
            this.options = o;
            return this;
        }

        public Builder output(Path p) {
            this.output = p;
            return this;
        }

        public Builder checksumFile(boolean v) {
            this.checksumFile = v;
            return this;
        }

        /** Compute the output's SHA-256 even without a checksum file (hashing a large sparse image takes time). */
        public Builder digest(boolean v) {
            this.digest = v;
            return this;
        }

        /** Check the finished image with {@link dev.kiln.ext4.Ext4Verifier} before publishing it. */
        public Builder verify(boolean v) {
            this.verify = v;
            return this;
        }

        public Builder progress(Progress p) {
            this.progress = Objects.requireNonNull(p);
            return this;
        }

        /**
         * A last check of the finished (uncompressed) image before it is published, e.g. booting
         * it; when it throws, nothing is published.
         */
        public Builder check(ImageCheck c) {
            this.check = c;
            return this;
        }

        public Build build() {
            return new Build(this);
        }
    }

    /** A check of the finished image, run before it is published. */
    @FunctionalInterface
    public interface ImageCheck {
        void check(Path image) throws IOException;
    }

    public Result run() throws IOException {
        Path abs = output.toAbsolutePath();
        Path dir = abs.getParent();
        if (dir != null && !Files.isDirectory(dir)) {
            throw new InvalidSourceException(dir + ": output directory does not exist; create it first");
        }
        if (Files.isDirectory(abs)) {
            throw new InvalidSourceException(abs + ": is a directory; give the image's file name, e.g. "
                    + abs.resolve("rootfs.ext4"));
        }
        String name = abs.getFileName().toString();
        boolean gz = name.endsWith(".gz");
        Path tmpImage;
        try {
            tmpImage = temporary(dir, "." + name + ".", ".tmp");
        } catch (IOException e) {
            throw cannotWrite(abs, e);
        }
        Path tmpGz = null;
        Path tmpSum = null;
        boolean done = false;
        try {
            Ext4Writer.Summary summary;
            // What is published is flushed to the device before it is renamed into place, as
            // mke2fs flushes: a raw image by the writer, which flushes in the background as the
            // image grows and waits at close only for the rest; a .gz once it is written, and the
            // raw image it is made from, deleted afterwards, not at all.
            // The first source reads ahead while the writer is set up.
            Source first = sources.isEmpty() ? null : sources.get(0);
            Ext4Writer w;
            try {
                if (first != null) {
                    first.start();
                }
                // Into the file made above, never a new one: the source's start takes a while, and
                // an interrupt meanwhile removes the file, which must then stay removed.
                w = Ext4Writer.overwrite(tmpImage, gz ? options.withSync(false) : options);
            } catch (IOException | RuntimeException e) {
                if (first != null) {
                    first.abandon();
                }
                throw e;
            }
            try {
                int i = 0;
                for (Source s : sources) {
                    progress.source(++i, sources.size(), s, w);
                    s.applyTo(w);
                }
            } catch (IOException | RuntimeException e) {
                try {
                    w.close();
                } catch (IOException | RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
                throw e;
            }
            progress.finishing("writing metadata");
            w.close();
            summary = w.summary();
            if (verify) {
                progress.finishing("verifying");
                try (dev.kiln.ext4.Ext4Reader r = dev.kiln.ext4.Ext4Reader.open(tmpImage)) {
                    var problems = dev.kiln.ext4.Ext4Verifier.verify(r);
                    if (!problems.isEmpty()) {
                        throw new IllegalStateException(abs + ": the written image failed verification (" + problems.size()
                                + " problems, first: " + problems.get(0) + "); this is a kiln bug, please report it");
                    }
                }
            }
            if (check != null) {
                check.check(tmpImage);
            }
            Path result = tmpImage;
            String gzSha = null;
            if (gz) {
                tmpGz = temporary(dir, "." + name + ".", ".gz.tmp");
                progress.finishing("compressing");
                gzSha = gzip(tmpImage, tmpGz);
                Files.delete(tmpImage);
                result = tmpGz;
                if (options.sync()) {
                    flush(tmpGz);
                }
            }
            if (digest) {
                progress.finishing("computing sha256");
            }
            // The raw image: the writer knows which regions it wrote, so holes are not read back.
            // A .gz is hashed as it is written; a raw image by the writer, which knows its holes.
            String sha = !digest ? null : gz ? gzSha : HexFormat.of().formatHex(w.sha256());
            long bytes = Files.size(result);
            if (checksumFile) {
                tmpSum = temporary(dir, "." + name + ".", ".sha256.tmp");
                Files.writeString(tmpSum, sha + "  " + name + "\n", java.nio.file.StandardOpenOption.WRITE,
                        java.nio.file.StandardOpenOption.TRUNCATE_EXISTING);
            }
            publishable(result);
            move(result, abs);
            if (tmpSum != null) {
                publishable(tmpSum);
                move(tmpSum, abs.resolveSibling(name + ".sha256"));
            }
            done = true;
            return new Result(abs, sha, bytes, summary);
        } catch (IOException e) {
            boolean ours = e instanceof java.nio.file.FileSystemException f && f.getFile() != null
                    && f.getFile().startsWith(dir + "/." + name + ".");
            if (isNoSpace(e) || ours) {
                // Free the space first, so the message says what is really free.
                for (Path t : new Path[] {tmpImage, tmpGz, tmpSum}) {
                    if (t != null) {
                        Files.deleteIfExists(t);
                    }
                }
                throw cannotWrite(abs, e);
            }
            throw e;
        } finally {
            untrack(tmpImage);
            if (tmpGz != null) {
                untrack(tmpGz);
            }
            if (tmpSum != null) {
                untrack(tmpSum);
            }
            if (!done) {
                Files.deleteIfExists(tmpImage);
                if (tmpGz != null) {
                    Files.deleteIfExists(tmpGz);
                }
                if (tmpSum != null) {
                    Files.deleteIfExists(tmpSum);
                }
            }
        }
    }

    private static boolean isNoSpace(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = String.valueOf(t.getMessage());
            if (m.contains("No space left on device") || m.contains("Disk quota exceeded")) {
                return true;
            }
        }
        return false;
    }

    /** The output's directory cannot take the image: say which, why, and what to do; never name the hidden temporary file. */
    private OutputException cannotWrite(Path out, IOException e) {
        Path dir = out.getParent();
        if (isNoSpace(e)) {
            String free = "";
            try {
                free = "; " + Sizes.human(Files.getFileStore(dir).getUsableSpace()) + " free there";
            } catch (IOException | RuntimeException x) {
                // unknown
            }
            return new OutputException(out + ": no space left on the device (the image takes up to "
                    + Sizes.human(options.sizeBytes()) + ", less where it is sparse" + free + "); free some space or write "
                    + "elsewhere with -o", e);
        }
        String why = e instanceof java.nio.file.AccessDeniedException ? "permission denied"
                : String.valueOf(e.getMessage()).contains("Read-only file system") ? "read-only file system"
                : e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage().replace(
                        String.valueOf(e instanceof java.nio.file.FileSystemException f ? f.getFile() : ""), "").trim());
        return new OutputException(out + ": cannot write in " + dir + " (" + why + "); choose a writable directory with -o",
                e);
    }

    /** Temporary files are created private (0600); the result gets the usual 0644. */
    private static final java.util.concurrent.atomic.AtomicLong TEMP_SEQ = new java.util.concurrent.atomic.AtomicLong();
    private static final java.nio.file.attribute.FileAttribute<?> OWNER_ONLY =
            java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                    java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));

    /**
     * A new file (mode 0600) beside the output, named by process id and a counter, and tracked
     * for removal if the process is interrupted: made and tracked at once, so an interrupt cannot
     * fall between the two and leave the file behind; once the process is ending, refused.
     * {@code Files.createTempFile} names files from a {@code SecureRandom}, whose first use loads
     * the security providers and seeds itself: ~10 ms of a build's start-up, for a name.
     */
    static Path temporary(Path dir, String prefix, String suffix) throws IOException {
        long pid = pid();
        for (int attempt = 0; ; attempt++) {
            Path p = dir.resolve(prefix + pid + "-" + TEMP_SEQ.incrementAndGet() + suffix);
            synchronized (TEMPORARY) {
                if (ending) {
                    throw new java.io.InterruptedIOException(p + ": not created, the process is being interrupted");
                }
                try {
                    Files.createFile(p, OWNER_ONLY);
                    TEMPORARY.add(p);
                    return p;
                } catch (java.nio.file.FileAlreadyExistsException e) {
                    // Left by an earlier process with the same id: take the next number.
                    if (attempt > 1000) {
                        throw e;
                    }
                }
            }
        }
    }

    /**
     * This process's id: /proc/self names it (one readlink); ProcessHandle's class set-up (a
     * native library, a reaper pool, the process's state read from /proc) cost 2-4 ms of a
     * small build, interpreted.
     */
    static long pid() {
        try {
            return Long.parseLong(Files.readSymbolicLink(Path.of("/proc/self")).toString());
        } catch (IOException | RuntimeException e) {
            return ProcessHandle.current().pid();
        }
    }

    /** {@code fdatasync} of a finished file. */
    private static void flush(Path p) throws IOException {
        try (java.nio.channels.FileChannel c = java.nio.channels.FileChannel.open(p, java.nio.file.StandardOpenOption.WRITE)) {
            c.force(false);
        }
    }

    private static void publishable(Path p) throws IOException {
        try {
            Files.setPosixFilePermissions(p, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        } catch (UnsupportedOperationException e) {
            // not a POSIX file system: keep what it gives
        }
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** gzip -6 on all cores (see {@link ParallelGzip}); one gzip member that any gunzip reads. */
    static String gzip(Path in, Path out) throws IOException {
        return ParallelGzip.compress(in, out, Deflater.DEFAULT_COMPRESSION);
    }

    public static String sha256(Path p) throws IOException {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            // Large reads: images are mostly sparse zeros, so this is bound by the digest itself.
            byte[] buf = new byte[1 << 20];
            try (InputStream in = Files.newInputStream(p)) {
                int n;
                while ((n = in.read(buf)) > 0) {
                    md.update(buf, 0, n);
                }
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
