package dev.kiln.cli;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * {@code kiln.lock}: what a build resolved, so a later build is the same build. It records the
 * base image as given and the digest it resolved to, the platform, and the sha256 of every
 * local input (agent, scripts, added files and trees, a local base). {@code --locked} refuses
 * to build when any of them now differs.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
record BuildLock(int version, String image, String digest, String platform, Map<String, String> inputs) {
    static final int VERSION = 1;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
            .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);

    static BuildLock read(Path file) {
        try {
            BuildLock l = JSON.readValue(file.toFile(), BuildLock.class);
            if (l.version() != VERSION) {
                throw new Errors.UsageException(file + ": lock file version " + l.version() + " is not "
                        + VERSION + "; build without --locked to write a new one");
            }
            return l;
        } catch (java.nio.file.NoSuchFileException | java.io.FileNotFoundException e) {
            throw new Errors.UsageException(file + ": no lock file; build once without --locked to write it");
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new InvalidLock(file + ": not a kiln lock file (" + e.getOriginalMessage() + "); build without "
                    + "--locked to write a new one");
        } catch (IOException e) {
            throw new InvalidLock(file + ": cannot be read (" + e.getMessage() + ")");
        }
    }

    /** Written beside, then moved over the old one: a lock file is never half written. */
    void write(Path file) throws IOException {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(tmp, JSON.writeValueAsString(this) + "\n");
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The first difference between what the lock records and what this build has, or null. */
    String differenceFrom(BuildLock now) {
        if (!image.equals(now.image)) {
            return "the lock is for --image " + image + ", this build has " + now.image;
        }
        if (digest != null && now.digest != null && !digest.equals(now.digest)) {
            return image + " now resolves to " + now.digest + ", the lock records " + digest + " (the tag moved)";
        }
        if (platform != null && !platform.equals(now.platform)) {
            return "the lock is for platform " + platform + ", this build has " + now.platform;
        }
        for (Map.Entry<String, String> e : inputs.entrySet()) {
            String have = now.inputs.get(e.getKey());
            if (have == null) {
                return "input " + e.getKey() + " is in the lock but not in this build";
            }
            if (!have.equals(e.getValue())) {
                return "input " + e.getKey() + " changed (sha256 " + have.substring(0, 12) + "…, the lock records "
                        + e.getValue().substring(0, 12) + "…)";
            }
        }
        for (String k : now.inputs.keySet()) {
            if (!inputs.containsKey(k)) {
                return "input " + k + " is new since the lock was written";
            }
        }
        return null;
    }

    /** sha256 of the local inputs, keyed by what they are ("agent", "script:PATH", "add:PATH", "base:PATH"). */
    static Map<String, String> inputs(Path agent, List<Path> scripts, List<String> adds, String image)
            throws IOException {
        Map<String, String> m = new LinkedHashMap<>();
        if (agent != null) {
            m.put("agent:" + agent, hash(agent));
        }
        for (Path s : scripts) {
            m.put("script:" + s, hash(s));
        }
        for (String a : adds) {
            int colon = a.indexOf(':');
            Path src = Path.of(colon > 0 ? a.substring(0, colon) : a);
            if (Files.exists(src, LinkOption.NOFOLLOW_LINKS)) {
                m.put("add:" + src, hash(src));
            }
        }
        for (String prefix : List.of("tar:", "oci-archive:", "docker-archive:", "ext4:", "dir:")) {
            if (image.startsWith(prefix)) {
                String rest = image.substring(prefix.length());
                Path p = Path.of(prefix.equals("docker-archive:") && rest.indexOf(':') > 0
                        ? rest.substring(0, rest.indexOf(':')) : rest);
                if (Files.exists(p)) {
                    m.put("base:" + p, hash(p));
                }
            }
        }
        return m;
    }

    /**
     * A file's sha256; a tree's is the sha256 of its sorted entries (relative path, type, mode,
     * and content's sha256 or link target), so it changes when anything in it does.
     */
    static String hash(Path p) throws IOException {
        if (!Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
            return dev.kiln.image.Build.sha256(p);
        }
        MessageDigest md = sha256();
        try (Stream<Path> walk = Files.walk(p)) {
            for (Path f : walk.sorted().toList()) {
                String rel = p.relativize(f).toString();
                md.update((rel + "\0").getBytes(java.nio.charset.StandardCharsets.UTF_8));
                if (Files.isSymbolicLink(f)) {
                    md.update(("l" + Files.readSymbolicLink(f) + "\0").getBytes(java.nio.charset.StandardCharsets.UTF_8));
                } else if (Files.isDirectory(f)) {
                    md.update((byte) 'd');
                } else if (Files.isRegularFile(f)) {
                    md.update((byte) 'f');
                    md.update((Files.isExecutable(f) ? "x" : "-").getBytes(java.nio.charset.StandardCharsets.UTF_8));
                    md.update(dev.kiln.image.Build.sha256(f).getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                } else {
                    md.update((byte) 'o');
                }
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A lock file that exists but cannot be used: invalid input (exit 3). */
    static final class InvalidLock extends dev.kiln.image.InvalidSourceException {
        InvalidLock(String message) {
            super(message);
        }
    }
}
