package dev.kiln.image.registry;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongConsumer;

/**
 * Content-addressed blobs ({@code $XDG_CACHE_HOME/kiln}, else {@code ~/.cache/kiln}), laid out as
 * an OCI layout's {@code blobs/sha256/HEX} so layers can be read back like any layout. A blob is
 * verified by sha256 before use; a bad one is removed and fetched again. Downloads go to a
 * {@code .partial} name, resume with an HTTP range after a dropped connection, and are renamed
 * into place only when their digest is right.
 */
public final class BlobCache {
    private static final int RESUME_ATTEMPTS = 5;
    private final Path root;
    private final ConcurrentHashMap<String, Object> locks = new ConcurrentHashMap<>();

    public BlobCache(Path root) {
        this.root = root;
    }

    public static Path defaultRoot() {
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isEmpty() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("kiln");
    }

    public Path root() {
        return root;
    }

    public Path path(String digest) {
        if (!digest.matches("sha256:[0-9a-f]{64}")) {
            throw new RegistryException("unsupported digest '" + digest + "'; only sha256 is supported", 0);
        }
        return root.resolve("blobs/sha256/" + digest.substring(7));
    }

    /** Whether a verified copy is cached; a corrupt one is deleted. */
    public boolean has(String digest) throws IOException {
        Path p = path(digest);
        if (!Files.isRegularFile(p)) {
            return false;
        }
        if (digest.equals(sha256(p))) {
            return true;
        }
        Files.deleteIfExists(p);
        return false;
    }

    /** Stores bytes already checked by the caller (manifests, configs). */
    public void put(String digest, byte[] b) throws IOException {
        Path p = path(digest);
        Files.createDirectories(p.getParent());
        Path tmp = Files.createTempFile(p.getParent(), p.getFileName().toString(), ".tmp");
        Files.write(tmp, b);
        move(tmp, p);
    }

    /** The blob, downloading it if it is not cached (or cached wrongly). */
    public Path fetch(RegistryClient client, ImageReference ref, String digest, LongConsumer progress) throws IOException {
        Object lock = locks.computeIfAbsent(digest, d -> new Object());
        synchronized (lock) {
            if (has(digest)) {
                progress.accept(Files.size(path(digest)));
                return path(digest);
            }
            Path p = path(digest);
            Files.createDirectories(p.getParent());
            Path partial = p.resolveSibling(p.getFileName() + ".partial");
            IOException last = null;
            for (int attempt = 0; attempt < RESUME_ATTEMPTS; attempt++) {
                long offset = Files.exists(partial) ? Files.size(partial) : 0;
                RegistryClient.BlobStream s = client.blob(ref, digest, offset);
                boolean append = offset > 0 && s.partial();
                try (InputStream in = s.in();
                        OutputStream out = Files.newOutputStream(partial, StandardOpenOption.CREATE,
                                append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
                    long done = append ? offset : 0;
                    byte[] buf = new byte[1 << 16];
                    int n;
                    while ((n = in.read(buf)) > 0) {
                        out.write(buf, 0, n);
                        done += n;
                        progress.accept(done);
                    }
                    last = null;
                    break;
                } catch (IOException e) {
                    last = e; // a dropped connection: resume from what arrived
                }
            }
            if (last != null) {
                throw new RegistryException("registry " + ref.registry() + ", repository " + ref.repository() + ": blob "
                        + digest + ": download failed " + RESUME_ATTEMPTS + " times (" + last.getMessage() + ")", last);
            }
            String actual = sha256(partial);
            if (!actual.equals(digest)) {
                Files.deleteIfExists(partial);
                throw new RegistryException("registry " + ref.registry() + ", repository " + ref.repository() + ": blob "
                        + digest + " arrived with digest " + actual + "; the registry served corrupt data", 0);
            }
            move(partial, p);
            return p;
        }
    }

    /** A cached tag's manifest digest, for --pull missing|never. */
    public String ref(ImageReference r) throws IOException {
        Path p = refPath(r);
        return Files.isRegularFile(p) ? Files.readString(p).trim() : null;
    }

    public void saveRef(ImageReference r, String digest) throws IOException {
        Path p = refPath(r);
        Files.createDirectories(p.getParent());
        Path tmp = Files.createTempFile(p.getParent(), ".ref", ".tmp");
        Files.writeString(tmp, digest + "\n");
        move(tmp, p);
    }

    private Path refPath(ImageReference r) {
        String key = (r.registry() + "/" + r.repository()).replace(':', '_');
        return root.resolve("refs").resolve(key).resolve(r.tag() == null ? "latest" : r.tag());
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    public static String sha256(Path p) throws IOException {
        return "sha256:" + dev.kiln.image.Build.sha256(p);
    }

    public static String sha256(byte[] b) {
        try {
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
