package dev.kiln.cli;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The declarative build file ({@code kiln build -f kiln.yaml}). Its schema is the build
 * command's own: every key is a long option of {@code kiln build} without its dashes, a flag
 * takes {@code true}/{@code false}, a repeatable option takes a list. An {@code add} entry may
 * also be a mapping ({@code from}, {@code to}, {@code mode}, {@code owner}). Relative paths
 * resolve against the file's directory. The file's options come first and the command line's
 * after them, so a flag overrides a single-valued key and adds to a list.
 */
final class BuildFile {
    /** Options that steer the reading of the file itself, never keys in it. */
    private static final List<String> META = List.of("file", "print-config", "locked", "lock", "help", "version");
    /** Source prefixes whose remainder is a local path. */
    private static final List<String> LOCAL_PREFIXES = List.of("tar:", "dir:", "oci:", "oci-archive:",
        "docker-archive:", "ext4:");

    private BuildFile() {}

    /**
     * Inserts the options of {@code -f FILE} right after {@code build}; other command lines are
     * returned as given.
     */
    static String[] expand(CommandLine root, String[] args) {
        int build = -1;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("build")) {
                build = i;
                break;
            }
            if (!args[i].startsWith("-")) {
                return args;
            }
        }
        if (build < 0) {
            return args;
        }
        Path file = null;
        for (int i = build + 1; i < args.length; i++) {
            String a = args[i];
            if ((a.equals("-f") || a.equals("--file")) && i + 1 < args.length) {
                file = Path.of(args[i + 1]);
            } else if (a.startsWith("--file=")) {
                file = Path.of(a.substring(7));
            } else if (a.startsWith("-f") && a.length() > 2 && !a.startsWith("--")) {
                file = Path.of(a.substring(2));
            } else if (a.equals("--")) {
                break;
            }
        }
        if (file == null) {
            return args;
        }
        List<String> fromFile = read(file, root.getSubcommands().get("build").getCommandSpec());
        List<String> out = new ArrayList<>(List.of(args).subList(0, build + 1));
        out.addAll(fromFile);
        out.addAll(List.of(args).subList(build + 1, args.length));
        return out.toArray(String[]::new);
    }

    /** The file's options as command-line arguments. */
    static List<String> read(Path file, CommandSpec build) {
        if (!Files.isRegularFile(file)) {
            throw new Errors.UsageException(file + ": no such build file; give the path of a kiln.yaml");
        }
        Path base = file.toAbsolutePath().getParent();
        List<String> args = new ArrayList<>();
        try (JsonParser p = new YAMLFactory().createParser(file.toFile())) {
            JsonToken t = p.nextToken();
            if (t == null) {
                return args; // an empty file sets nothing
            }
            if (t != JsonToken.START_OBJECT) {
                throw error(file, p.currentLocation(), "a build file is a mapping of option names to values");
            }
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String key = p.currentName();
                JsonLocation at = p.currentLocation();
                OptionSpec o = build.findOption("--" + key);
                if (o == null || META.contains(key) || key.length() == 1) {
                    throw error(file, at, "unknown key '" + key + "'" + suggest(key, build)
                            + "; keys are kiln build's long options without the dashes");
                }
                String name = o.longestName();
                JsonToken v = p.nextToken();
                if (o.arity().max() == 0) {
                    if (v != JsonToken.VALUE_TRUE && v != JsonToken.VALUE_FALSE) {
                        throw error(file, p.currentLocation(), "'" + key + "' is a flag: true or false");
                    }
                    if (v == JsonToken.VALUE_TRUE) {
                        args.add(name);
                    }
                } else if (v == JsonToken.START_ARRAY) {
                    if (!o.isMultiValue()) {
                        throw error(file, p.currentLocation(), "'" + key + "' takes one value, not a list");
                    }
                    while ((v = p.nextToken()) != JsonToken.END_ARRAY) {
                        args.add(name);
                        args.add(value(file, p, v, key, o, base));
                    }
                } else {
                    args.add(name);
                    args.add(value(file, p, v, key, o, base));
                }
            }
        } catch (JsonProcessingException e) {
            JsonLocation at = e.getLocation();
            throw new Errors.UsageException(file + (at != null ? ":" + at.getLineNr() : "") + ": not valid YAML ("
                    + e.getOriginalMessage().lines().findFirst().orElse("") + ")");
        } catch (IOException e) {
            throw new Errors.UsageException(file + ": cannot be read (" + e.getMessage() + ")");
        }
        return args;
    }

    private static String value(Path file, JsonParser p, JsonToken v, String key, OptionSpec o, Path base)
            throws IOException {
        if (v == JsonToken.START_OBJECT) {
            if (!key.equals("add")) {
                throw error(file, p.currentLocation(), "'" + key + "' takes a value, not a mapping");
            }
            return addEntry(file, p, base);
        }
        if (v == JsonToken.START_ARRAY || v == JsonToken.VALUE_NULL || v == null) {
            throw error(file, p.currentLocation(), "'" + key + "' takes " + (o.isMultiValue() ? "a value or a list of values"
                    : "one value"));
        }
        String s = p.getText();
        return relative(key, o, s, base);
    }

    /** {@code {from, to, mode, owner}} as the {@code SRC:DEST[:MODE[:UID:GID]]} of --add. */
    private static String addEntry(Path file, JsonParser p, Path base) throws IOException {
        Map<String, String> m = new LinkedHashMap<>();
        JsonToken t;
        while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
            String k = p.currentName();
            JsonLocation at = p.currentLocation();
            JsonToken v = p.nextToken();
            if (!List.of("from", "to", "mode", "owner").contains(k)) {
                throw error(file, at, "unknown key '" + k + "' in an add entry; use from, to, mode, owner");
            }
            if (v == JsonToken.START_OBJECT || v == JsonToken.START_ARRAY) {
                throw error(file, at, "'" + k + "' in an add entry takes one value");
            }
            m.put(k, p.getText());
        }
        if (!m.containsKey("from") || !m.containsKey("to")) {
            throw error(file, p.currentLocation(), "an add entry needs from and to");
        }
        if (m.containsKey("owner") && !m.containsKey("mode")) {
            throw error(file, p.currentLocation(), "an add entry with an owner needs a mode too");
        }
        String from = resolve(base, m.get("from"));
        return from + ":" + m.get("to") + (m.containsKey("mode") ? ":" + m.get("mode") : "")
                + (m.containsKey("owner") ? ":" + m.get("owner") : "");
    }

    /** Paths in the file are relative to the file's directory, as in every build-file format. */
    private static String relative(String key, OptionSpec o, String s, Path base) {
        Class<?> type = o.isMultiValue() && o.auxiliaryTypes().length > 0 ? o.auxiliaryTypes()[0] : o.type();
        if (type == Path.class || type == java.io.File.class) {
            return resolve(base, s);
        }
        if (key.equals("add")) {
            int colon = s.indexOf(':');
            return colon > 0 ? resolve(base, s.substring(0, colon)) + s.substring(colon) : s;
        }
        if (key.equals("image")) {
            for (String prefix : LOCAL_PREFIXES) {
                if (s.startsWith(prefix)) {
                    return prefix + resolve(base, s.substring(prefix.length()));
                }
            }
        }
        return s;
    }

    private static String resolve(Path base, String s) {
        if (s.isEmpty() || s.startsWith("/") || s.startsWith("~")) {
            return s;
        }
        return base.resolve(s).normalize().toString();
    }

    private static Errors.UsageException error(Path file, JsonLocation at, String what) {
        return new Errors.UsageException(file + ":" + (at == null ? 0 : at.getLineNr()) + ": " + what);
    }

    private static String suggest(String key, CommandSpec build) {
        String best = null;
        int bestDistance = 3;
        for (OptionSpec o : build.options()) {
            String n = o.longestName().replaceFirst("^--?", "");
            int d = distance(key, n);
            if (d < bestDistance) {
                bestDistance = d;
                best = n;
            }
        }
        return best == null ? "" : " (did you mean '" + best + "'?)";
    }

    private static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] x = prev;
            prev = cur;
            cur = x;
        }
        return prev[b.length()];
    }

    /**
     * The effective configuration as a build file: every option of the build that has a value,
     * after the file and the command line are combined. Feeding it back with {@code -f} gives the
     * same configuration.
     */
    static String effective(CommandSpec build) throws IOException {
        Map<String, Object> out = new LinkedHashMap<>();
        for (OptionSpec o : build.options()) {
            String key = o.longestName().replaceFirst("^--?", "");
            if (META.contains(key) || o.longestName().length() == 2 || key.equals("stacktrace")) {
                continue;
            }
            Object v = o.getValue();
            if (v == null) {
                continue;
            }
            if (o.arity().max() == 0) {
                if (Boolean.TRUE.equals(v)) {
                    out.put(key, true);
                }
                continue;
            }
            if (key.equals("root-password")) {
                out.put(key, "<hidden>");
            } else if (v instanceof java.util.Collection<?> c) {
                if (!c.isEmpty()) {
                    out.put(key, c.stream().map(x -> x instanceof Path path ? path.toAbsolutePath().toString()
                            : String.valueOf(x)).toList());
                }
            } else if (v instanceof Path path) {
                out.put(key, path.toAbsolutePath().toString()); // valid wherever the printed file is put
            } else {
                out.put(key, String.valueOf(v));
            }
        }
        YAMLMapper m = YAMLMapper.builder().disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES).build();
        return m.writeValueAsString(out);
    }
}
