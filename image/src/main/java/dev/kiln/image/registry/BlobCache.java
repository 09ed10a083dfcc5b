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
import java.util.ArrayList;
import java.util.List;
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

    /**
     * Whether a verified copy is cached; a corrupt one is deleted. A blob is hashed once: its
     * verification is remembered beside the cache ({@code verified/HEX}: size, modification time
     * and file key when it was checked), and a later lookup re-hashes only when any of them changed.
     */
    public boolean has(String digest) throws IOException {
        Path p = path(digest);
        if (!Files.isRegularFile(p)) {
            return false;
        }
        if (stamp(p).equals(readStamp(digest))) {
            return true;
        }
        if (digest.equals(sha256(p))) {
            remember(digest, p);
            return true;
        }
        Files.deleteIfExists(p);
        Files.deleteIfExists(stampPath(digest));
        return false;
    }

    private Path stampPath(String digest) {
        return root.resolve("verified").resolve(digest.substring(7));
    }

    private static String stamp(Path p) throws IOException {
        var a = Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class);
        return a.size() + " " + a.lastModifiedTime().to(java.util.concurrent.TimeUnit.NANOSECONDS) + " " + a.fileKey();
    }

    private String readStamp(String digest) {
        try {
            return Files.readString(stampPath(digest)).trim();
        } catch (IOException e) {
            return "";
        }
    }

    /** Records that the blob at {@code p} was checked against its digest. */
    private void remember(String digest, Path p) throws IOException {
        Path s = stampPath(digest);
        Files.createDirectories(s.getParent());
        Path tmp = Files.createTempFile(s.getParent(), ".stamp", ".tmp");
        Files.writeString(tmp, stamp(p) + "\n");
        move(tmp, s);
    }

    /** One cached blob. */
    public record Blob(String digest, long size, java.nio.file.attribute.FileTime modified, boolean referenced) {}

    /** One cached tag and the manifest digest it resolved to. */
    public record Ref(String reference, String digest) {}

    /** The cached tags. */
    public List<Ref> refs() throws IOException {
        List<Ref> out = new ArrayList<>();
        Path refs = root.resolve("refs");
        if (!Files.isDirectory(refs)) {
            return out;
        }
        try (var walk = Files.walk(refs)) {
            for (Path f : walk.filter(Files::isRegularFile).filter(f -> !f.toString().endsWith(".tmp")).sorted().toList()) {
                Path rel = refs.relativize(f);
                String repo = rel.getParent().toString().replaceFirst("_(\\d+)/", ":$1/");
                out.add(new Ref(repo + ":" + rel.getFileName(), Files.readString(f).trim()));
            }
        }
        return out;
    }

    /** Every cached blob, and whether a cached tag's manifest (or index) reaches it. */
    public List<Blob> blobs() throws IOException {
        java.util.Set<String> reached = reachable();
        List<Blob> out = new ArrayList<>();
        Path dir = root.resolve("blobs/sha256");
        if (!Files.isDirectory(dir)) {
            return out;
        }
        try (var list = Files.list(dir)) {
            for (Path f : list.sorted().toList()) {
                String name = f.getFileName().toString();
                if (!name.matches("[0-9a-f]{64}")) {
                    continue;
                }
                String d = "sha256:" + name;
                out.add(new Blob(d, Files.size(f), Files.getLastModifiedTime(f), reached.contains(d)));
            }
        }
        return out;
    }

    /** What {@link #prune} removed. */
    public record Pruned(int files, long bytes) {}

    /**
     * Removes blobs no cached tag reaches, interrupted downloads and stale stamps; with
     * {@code all}, everything (blobs, tags, stamps).
     */
    public Pruned prune(boolean all) throws IOException {
        java.util.Set<String> keep = all ? java.util.Set.of() : reachable();
        int files = 0;
        long bytes = 0;
        Path dir = root.resolve("blobs/sha256");
        if (Files.isDirectory(dir)) {
            try (var list = Files.list(dir)) {
                for (Path f : list.toList()) {
                    String name = f.getFileName().toString();
                    String d = "sha256:" + (name.length() >= 64 ? name.substring(0, 64) : name);
                    if (all || !name.matches("[0-9a-f]{64}") || !keep.contains(d)) {
                        bytes += Files.size(f);
                        Files.deleteIfExists(f);
                        Files.deleteIfExists(root.resolve("verified").resolve(d.substring(7)));
                        files++;
                    }
                }
            }
        }
        if (all) {
            for (String sub : List.of("refs", "verified")) {
                Path p = root.resolve(sub);
                if (Files.isDirectory(p)) {
                    try (var walk = Files.walk(p)) {
                        for (Path f : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                            Files.deleteIfExists(f);
                        }
                    }
                }
            }
        }
        return new Pruned(files, bytes);
    }

    /** Blobs reachable from the cached tags: manifests, their configs and layers, index children. */
    private java.util.Set<String> reachable() throws IOException {
        java.util.Set<String> seen = new java.util.HashSet<>();
        java.util.ArrayDeque<String> todo = new java.util.ArrayDeque<>();
        for (Ref r : refs()) {
            todo.add(r.digest());
        }
        while (!todo.isEmpty()) {
            String d = todo.poll();
            if (d == null || !d.matches("sha256:[0-9a-f]{64}") || !seen.add(d)) {
                continue;
            }
            Path p = path(d);
            if (!Files.isRegularFile(p) || Files.size(p) > (4 << 20)) {
                continue; // a layer, or absent: nothing to follow
            }
            dev.kiln.image.OciJson.Manifest n;
            try {
                n = dev.kiln.image.OciJson.manifest(Files.readAllBytes(p));
            } catch (IOException e) {
                continue; // not a manifest: a config or a small layer
            }
            for (var m : n.manifests()) {
                todo.add(m.digest());
            }
            if (n.config() != null) {
                todo.add(n.config().digest());
            }
            for (var l : n.layers()) {
                todo.add(l.digest());
            }
        }
        return seen;
    }

    /** Stores bytes already checked by the caller (manifests, configs). */
    public void put(String digest, byte[] b) throws IOException {
        Path p = path(digest);
        Files.createDirectories(p.getParent());
        Path tmp = Files.createTempFile(p.getParent(), p.getFileName().toString(), ".tmp");
        Files.write(tmp, b);
        move(tmp, p);
        remember(digest, p);
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
            remember(digest, p);
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
