package dev.kiln.image;

import dev.kiln.ext4.Ext4Writer;
import java.nio.file.Files;
import java.nio.file.Path;

/** Parses {@code --image} references into sources. */
public final class Sources {
    private Sources() {}

    /** The empty source: an image with nothing but what the writer creates itself. */
    public static final Source SCRATCH = new Source() {
        @Override
        public void applyTo(Ext4Writer writer) {}

        @Override
        public String describe() {
            return "scratch";
        }
    };

    public static Source parse(String ref) {
        return parse(ref, OciSource.Platform.host());
    }

    /** How registry references are pulled. */
    public record Registry(dev.kiln.image.registry.RegistryClient client, dev.kiln.image.registry.BlobCache cache,
            RegistrySource.Pull pull, RegistrySource.Listener listener) {}

    private static Registry defaultRegistry() {
        return new Registry(new dev.kiln.image.registry.RegistryClient(dev.kiln.image.registry.Credentials.defaults(null),
                java.util.Set.of()), new dev.kiln.image.registry.BlobCache(dev.kiln.image.registry.BlobCache.defaultRoot()),
                RegistrySource.Pull.MISSING, null);
    }

    public static Source parse(String ref, OciSource.Platform platform) {
        return parse(ref, platform, null);
    }

    /**
     * Parses a reference; {@code platform} chooses from multi-platform images. A path with a
     * colon can be written with a trailing colon-free tag omitted, e.g. {@code oci:./layout}.
     */
    public static Source parse(String ref, OciSource.Platform platform, Registry registry) {
        if (ref == null || ref.isBlank()) {
            throw new InvalidSourceException("empty image reference; use tar:FILE, dir:PATH or scratch");
        }
        if (ref.equals("scratch")) {
            return SCRATCH;
        }
        int colon = ref.indexOf(':');
        String scheme = colon > 0 ? ref.substring(0, colon) : "";
        if (ref.startsWith("docker://")) {
            scheme = "docker";
        }
        String rest = colon > 0 ? ref.substring(colon + 1) : ref;
        switch (scheme) {
            case "tar":
                return new TarSource(existing(rest, ref, false));
            case "dir":
                return new DirSource(existing(rest, ref, true));
            case "ext4":
                return new Ext4Source(existing(rest, ref, false));
            case "oci", "oci-archive", "docker-archive": {
                String p = rest;
                String tag = null;
                String digest = null;
                int at = p.lastIndexOf('@');
                if (at > 0 && p.substring(at + 1).startsWith("sha256:")) {
                    digest = p.substring(at + 1);
                    p = p.substring(0, at);
                }
                if (!Files.exists(Path.of(p))) {
                    // PATH:TAG, where the tag may itself hold ':' and '/' (docker's repo:tag): the
                    // shortest prefix that exists is the path.
                    for (int c = p.indexOf(':'); c > 0; c = p.indexOf(':', c + 1)) {
                        if (Files.exists(Path.of(p.substring(0, c)))) {
                            tag = p.substring(c + 1);
                            p = p.substring(0, c);
                            break;
                        }
                    }
                }
                boolean dir = scheme.equals("oci");
                OciSource.Kind kind = dir ? OciSource.Kind.LAYOUT
                        : scheme.equals("oci-archive") ? OciSource.Kind.ARCHIVE : OciSource.Kind.DOCKER;
                return new OciSource(kind, existing(p, ref, dir), tag, digest, platform);
            }
            default: {
                // Anything else is a registry reference: alpine:3.20, ghcr.io/o/r@sha256:..., docker://...
                // but never a local path or an unknown prefix, which would go to Docker Hub.
                notLocal(ref, scheme, rest);
                dev.kiln.image.registry.ImageReference r = dev.kiln.image.registry.ImageReference.parse(ref);
                Registry reg = registry != null ? registry : defaultRegistry();
                return new RegistrySource(r, platform, reg.client(), reg.cache(), reg.pull(), reg.listener());
            }
        }
    }

    /** The prefixes --image takes, for messages. */
    public static final String PREFIXES = "oci:DIR, oci-archive:FILE, docker-archive:FILE, tar:FILE, dir:PATH, "
            + "ext4:FILE, scratch, or a registry reference such as alpine:3.20";

    private static final java.util.regex.Pattern TAG = java.util.regex.Pattern.compile("[\\w][\\w.-]{0,127}");

    /** Refuses, without any network access, a reference that names a local path or has an unknown prefix. */
    private static void notLocal(String ref, String scheme, String rest) {
        Path whole = pathOrNull(ref);
        if (whole != null && (ref.startsWith("/") || ref.startsWith(".") || ref.startsWith("~") || Files.exists(whole))) {
            if (Files.exists(whole)) {
                throw new InvalidSourceException(ref + ": a local " + (Files.isDirectory(whole) ? "directory" : "file")
                        + ", not a registry reference; say what it is: " + suggest(whole, ref) + " (--image takes "
                        + PREFIXES + "; for a registry image of that name write docker://" + ref + ")");
            }
            throw new InvalidSourceException(ref + ": no such file or directory; a local source needs a prefix ("
                    + PREFIXES + ")");
        }
        if (!scheme.isEmpty() && !scheme.equals("docker") && !TAG.matcher(rest).matches()
                && !rest.matches("[0-9]+/.*")) {
            Path p = pathOrNull(rest);
            String hint = p != null && Files.exists(p) ? "; for " + rest + " use " + suggest(p, rest) : "";
            throw new InvalidSourceException(ref + ": unknown prefix '" + scheme + ":'" + hint + " (--image takes "
                    + PREFIXES + ")");
        }
    }

    private static Path pathOrNull(String s) {
        try {
            return Path.of(s.startsWith("~/") ? System.getProperty("user.home") + s.substring(1) : s);
        } catch (java.nio.file.InvalidPathException e) {
            return null;
        }
    }

    /** The likely prefix for a local path, from what it holds. */
    static String suggest(Path p, String shown) {
        if (Files.isDirectory(p)) {
            return (Files.exists(p.resolve("oci-layout")) ? "oci:" : "dir:") + shown;
        }
        byte[] head = new byte[1082];
        int n = 0;
        try (var in = Files.newInputStream(p)) {
            n = in.readNBytes(head, 0, head.length);
        } catch (java.io.IOException e) {
            return "tar:" + shown;
        }
        if (n >= 1082 && (head[1080] & 0xff) == 0x53 && (head[1081] & 0xff) == 0xEF) {
            return "ext4:" + shown;
        }
        try (var tar = TarStream.headers(Compression.decompress(Files.newInputStream(p)))) {
            int entries = 0;
            for (var e = tar.getNextEntry(); e != null && entries++ < 10_000; e = tar.getNextEntry()) {
                String name = e.getName().replaceFirst("^\\./", "");
                if (name.equals("manifest.json")) {
                    return "docker-archive:" + shown;
                }
                if (name.equals("oci-layout")) {
                    return "oci-archive:" + shown;
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // not a tar kiln can read: tar: still says what was meant
        }
        return "tar:" + shown;
    }

    private static Path existing(String p, String ref, boolean dir) {
        if (p.isEmpty()) {
            throw new InvalidSourceException(ref + ": missing path after the prefix");
        }
        Path path = Path.of(p);
        if (!Files.exists(path)) {
            throw new InvalidSourceException(p + ": no such " + (dir ? "directory" : "file")
                    + "; check the path given to --image");
        }
        if (dir && !Files.isDirectory(path)) {
            throw new InvalidSourceException(p + ": not a directory; use tar:" + p + " for an archive");
        }
        if (!dir && Files.isDirectory(path)) {
            throw new InvalidSourceException(p + ": is a directory; use dir:" + p);
        }
        return path;
    }
}
