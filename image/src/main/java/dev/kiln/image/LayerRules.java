package dev.kiln.image;

import dev.kiln.ext4.Ext4Writer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * OCI changeset semantics for one layer (image-spec {@code layer.md}): {@code .wh.NAME} deletes
 * NAME from the layers below, {@code .wh..wh..opq} hides everything the layers below put in its
 * directory, an entry replaces whatever was at its path (a file a directory and vice versa), and
 * whiteout files never appear in the image. Opaque directories are applied when the layer ends,
 * so the order of entries inside the layer does not matter.
 */
final class LayerRules implements TarSource.EntryRules {
    static final String WHITEOUT = ".wh.";
    static final String OPAQUE = ".wh..wh..opq";

    private final Set<String> added = new HashSet<>();
    private final Set<String> opaque = new LinkedHashSet<>();

    static String normalize(String name) {
        List<String> parts = new ArrayList<>();
        for (String p : name.split("/")) {
            if (p.isEmpty() || p.equals(".")) {
                continue;
            }
            if (p.equals("..")) {
                if (!parts.isEmpty()) {
                    parts.remove(parts.size() - 1);
                }
                continue;
            }
            parts.add(p);
        }
        return "/" + String.join("/", parts);
    }

    @Override
    public boolean before(String name, boolean directory, Ext4Writer w) {
        String path = normalize(name);
        int slash = path.lastIndexOf('/');
        String dir = slash <= 0 ? "/" : path.substring(0, slash);
        String base = path.substring(slash + 1);
        if (base.equals(OPAQUE)) {
            opaque.add(dir);
            return true;
        }
        if (base.startsWith(WHITEOUT)) {
            String victim = (dir.equals("/") ? "" : dir) + "/" + base.substring(WHITEOUT.length());
            w.remove(victim);
            return true;
        }
        if (!directory && w.isDirectory(path)) {
            w.remove(path); // a file replaces a directory and everything in it
        }
        added.add(path);
        return false;
    }

    @Override
    public void end(Ext4Writer w) {
        for (String dir : opaque) {
            hideLower(dir, w);
        }
    }

    /** Removes what lower layers put under {@code dir}, keeping this layer's own entries. */
    private void hideLower(String dir, Ext4Writer w) {
        for (String name : w.list(dir)) {
            String p = (dir.equals("/") ? "" : dir) + "/" + name;
            if (!added.contains(p)) {
                w.remove(p);
            } else if (w.isDirectory(p)) {
                hideLower(p, w);
            }
        }
    }
}
