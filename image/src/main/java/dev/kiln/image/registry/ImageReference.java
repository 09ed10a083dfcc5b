package dev.kiln.image.registry;

import dev.kiln.image.InvalidSourceException;
import java.util.regex.Pattern;

/**
 * A registry image reference, normalised as Docker and skopeo do: {@code alpine} is
 * {@code docker.io/library/alpine:latest}; the first path component is a registry host when it
 * has a dot or a port or is {@code localhost}; {@code docker://} is accepted.
 */
public record ImageReference(String registry, String repository, String tag, String digest) {
    public static final String DOCKER_HUB = "docker.io";
    private static final Pattern COMPONENT = Pattern.compile("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*");
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    private static final Pattern DIGEST = Pattern.compile("sha256:[0-9a-f]{64}");
    private static final Pattern HOST = Pattern.compile("(?:[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?");

    public static ImageReference parse(String input) {
        String s = input.startsWith("docker://") ? input.substring("docker://".length()) : input;
        if (s.isEmpty()) {
            throw bad(input, "it is empty");
        }
        String digest = null;
        int at = s.indexOf('@');
        if (at >= 0) {
            digest = s.substring(at + 1);
            s = s.substring(0, at);
            if (!DIGEST.matcher(digest).matches()) {
                throw bad(input, "the digest must be sha256: followed by 64 lowercase hex digits");
            }
        }
        String registry = DOCKER_HUB;
        int slash = s.indexOf('/');
        if (slash > 0) {
            String first = s.substring(0, slash);
            if (first.contains(".") || first.contains(":") || first.equals("localhost") || first.startsWith("[")) {
                if (!HOST.matcher(first).matches()) {
                    throw bad(input, "'" + first + "' is not a valid registry host");
                }
                registry = first;
                s = s.substring(slash + 1);
            }
        }
        String tag = null;
        int colon = s.lastIndexOf(':');
        if (colon > s.lastIndexOf('/')) {
            tag = s.substring(colon + 1);
            s = s.substring(0, colon);
            if (!TAG.matcher(tag).matches()) {
                throw bad(input, "'" + tag + "' is not a valid tag");
            }
        }
        if (s.isEmpty()) {
            throw bad(input, "the repository name is missing");
        }
        for (String c : s.split("/", -1)) {
            if (!COMPONENT.matcher(c).matches()) {
                throw bad(input, "'" + c + "' is not a valid repository name component (lowercase letters, digits, "
                        + "and . _ - between them)");
            }
        }
        if (registry.equals(DOCKER_HUB) && !s.contains("/")) {
            s = "library/" + s;
        }
        if (s.length() > 255) {
            throw bad(input, "the repository name is longer than 255 characters");
        }
        if (tag == null && digest == null) {
            tag = "latest";
        }
        return new ImageReference(registry, s, tag, digest);
    }

    private static InvalidSourceException bad(String input, String why) {
        return new InvalidSourceException("'" + input + "' is not a valid image reference: " + why);
    }

    /** The host the registry API answers on (Docker Hub's differs from its name). */
    public String apiHost() {
        return registry.equals(DOCKER_HUB) ? "registry-1.docker.io" : registry;
    }

    /** What to ask the manifests endpoint for: the digest if given, else the tag. */
    public String reference() {
        return digest != null ? digest : tag;
    }

    @Override
    public String toString() {
        return registry + "/" + repository + (tag != null ? ":" + tag : "") + (digest != null ? "@" + digest : "");
    }
}
