package dev.kiln.cli;

import dev.kiln.image.Sizes;
import dev.kiln.image.registry.BlobCache;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code kiln cache ls|prune}: the blob cache that registry pulls, fetches and builds share. */
@Command(name = "cache",
        description = "Lists or prunes the blob cache (registry manifests, layers and published images).",
        subcommands = {CacheCommand.Ls.class, CacheCommand.Prune.class})
final class CacheCommand extends StandardOptions implements Runnable {
    @Spec CommandSpec spec;

    @Override
    public void run() {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(), "missing command: kiln cache ls|prune");
    }

    /** Options both subcommands take. */
    static final class Where {
        @Option(names = "--cache", paramLabel = "DIR",
                description = "Blob cache (default: $XDG_CACHE_HOME/kiln, else ~/.cache/kiln).")
        Path cache;

        BlobCache open() {
            return new BlobCache(cache != null ? cache : BlobCache.defaultRoot());
        }
    }

    @Command(name = "ls",
            description = "Lists the cached tags and blobs, with sizes and whether a cached tag still uses each blob.")
    static final class Ls extends StandardOptions implements Callable<Integer> {
        @Spec CommandSpec spec;
        @picocli.CommandLine.Mixin Where where;
        @Option(names = "--json", description = "Print one JSON document.") boolean json;

        @Override
        public Integer call() throws Exception {
            BlobCache c = where.open();
            var refs = c.refs();
            var blobs = c.blobs();
            long total = blobs.stream().mapToLong(BlobCache.Blob::size).sum();
            long unused = blobs.stream().filter(b -> !b.referenced()).mapToLong(BlobCache.Blob::size).sum();
            PrintWriter out = spec.commandLine().getOut();
            if (json) {
                Map<String, Object> j = new LinkedHashMap<>();
                j.put("cache", c.root().toString());
                List<Map<String, Object>> r = new ArrayList<>();
                refs.forEach(x -> r.add(Map.of("reference", x.reference(), "digest", x.digest())));
                List<Map<String, Object>> b = new ArrayList<>();
                blobs.forEach(x -> b.add(Map.of("digest", x.digest(), "size", x.size(), "modified",
                        x.modified().toString(), "referenced", x.referenced())));
                j.put("refs", r);
                j.put("blobs", b);
                j.put("bytes", total);
                j.put("unreferencedBytes", unused);
                Json.print(out, j);
                return Kiln.OK;
            }
            out.println("cache: " + c.root());
            for (var x : refs) {
                out.println("tag   " + x.reference() + " -> " + x.digest());
            }
            for (var x : blobs) {
                out.printf(Locale.ROOT, "blob  %s %10s%s%n", x.digest(), Sizes.human(x.size()),
                        x.referenced() ? "" : "  (no cached tag uses it)");
            }
            out.printf(Locale.ROOT, "%d tag(s), %d blob(s), %s; %s prunable%n", refs.size(), blobs.size(),
                    Sizes.human(total), Sizes.human(unused));
            return Kiln.OK;
        }
    }

    @Command(name = "prune",
            description = "Removes blobs no cached tag uses and interrupted downloads (--all: empties the cache).")
    static final class Prune extends StandardOptions implements Callable<Integer> {
        @Spec CommandSpec spec;
        @picocli.CommandLine.Mixin Where where;
        @Option(names = "--all", description = "Remove every blob and tag.") boolean all;
        @Option(names = "--json", description = "Print one JSON document.") boolean json;

        @Override
        public Integer call() throws Exception {
            BlobCache c = where.open();
            var p = c.prune(all);
            if (json) {
                Json.print(spec.commandLine().getOut(), Map.of("cache", c.root().toString(), "removed", p.files(),
                        "bytes", p.bytes()));
            } else {
                spec.commandLine().getOut().printf(Locale.ROOT, "removed %d file(s), %s from %s%n", p.files(),
                        Sizes.human(p.bytes()), c.root());
            }
            return Kiln.OK;
        }
    }
}
