package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * {@link BuildModel}, the code-built model of {@code kiln build}, against the model picocli reads
 * off {@link BuildCommand}'s annotations: it must be the generator's current output, and the
 * two models must agree in every option attribute, in their help and in what any command line
 * parses to (or in the error it gives).
 */
class BuildModelTest {
    private static CommandSpec annotated() {
        return new CommandLine(new BuildCommand()).getCommandSpec();
    }

    private static CommandSpec generated() {
        return new CommandLine(BuildModel.spec(new BuildCommand())).getCommandSpec();
    }

    @Test
    void checkedInSourceIsWhatTheGeneratorWritesNow() throws Exception {
        String now = ModelSource.build();
        if (Boolean.getBoolean("kiln.model.write")) {
            Files.writeString(ModelSource.FILE, now, StandardCharsets.UTF_8);
        }
        assertEquals(now, Files.readString(ModelSource.FILE, StandardCharsets.UTF_8),
                "BuildModel.java is stale: an option of kiln build changed; regenerate it as its first lines say");
    }

    @Test
    void everyOptionHasTheAnnotatedAttributes() {
        CommandSpec a = annotated();
        CommandSpec g = generated();
        assertEquals(a.name(), g.name());
        assertEquals(a.mixins().keySet(), g.mixins().keySet());
        assertEquals(a.options().size(), g.options().size());
        assertTrue(a.positionalParameters().isEmpty() && g.positionalParameters().isEmpty());
        for (int i = 0; i < a.options().size(); i++) {
            OptionSpec x = a.options().get(i);
            OptionSpec y = g.options().get(i);
            assertEquals(attributes(x), attributes(y), x.longestName());
        }
        for (String m : a.mixins().keySet()) {
            List<String> ax = new ArrayList<>();
            List<String> gx = new ArrayList<>();
            a.mixins().get(m).options().forEach(o -> ax.add(o.longestName()));
            g.mixins().get(m).options().forEach(o -> gx.add(o.longestName()));
            assertEquals(ax, gx, "mixin " + m);
        }
    }

    /** What picocli shows and uses of an option, as text (converters and candidates by class and content). */
    private static Map<String, Object> attributes(OptionSpec o) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("names", List.of(o.names()));
        m.put("toString", o.toString());
        m.put("arity", o.arity() + (o.arity().isUnspecified() ? " unspecified" : ""));
        m.put("paramLabel", o.paramLabel());
        m.put("hideParamSyntax", o.hideParamSyntax());
        m.put("description", List.of(o.description()));
        m.put("descriptionKey", o.descriptionKey());
        m.put("defaultValue", o.defaultValue());
        m.put("defaultValueString", o.defaultValueString());
        m.put("initialValue", o.initialValue());
        m.put("hasInitialValue", o.hasInitialValue());
        m.put("type", o.type());
        m.put("auxiliaryTypes", List.of(o.auxiliaryTypes()));
        m.put("typeInfo", Arrays.asList(o.typeInfo().isBoolean(), o.typeInfo().isMultiValue(), o.typeInfo().isArray(),
                o.typeInfo().isCollection(), o.typeInfo().isMap(), o.typeInfo().isEnum(), o.typeInfo().isOptional(),
                o.typeInfo().getClassName(), o.typeInfo().getEnumConstantNames()));
        m.put("converters", Arrays.stream(o.converters()).map(c -> c.getClass().getName()).toList());
        List<String> candidates = new ArrayList<>();
        if (o.completionCandidates() != null) {
            o.completionCandidates().forEach(candidates::add);
        }
        m.put("completionCandidates", candidates);
        m.put("required", o.required());
        m.put("hidden", o.hidden());
        m.put("negatable", o.negatable());
        m.put("order", o.order());
        m.put("split", o.splitRegex() + " " + o.splitRegexSynopsisLabel());
        m.put("fallbackValue", o.fallbackValue());
        m.put("mapFallbackValue", o.mapFallbackValue());
        m.put("showDefaultValue", o.showDefaultValue());
        m.put("help", List.of(o.usageHelp(), o.versionHelp(), o.help()));
        m.put("interactive", Arrays.asList(o.interactive(), o.echo(), o.prompt()));
        m.put("scope", o.scopeType());
        m.put("inherited", o.inherited());
        m.put("consumer", o.parameterConsumer() == null ? "" : o.parameterConsumer().getClass().getName());
        m.put("preprocessor", o.preprocessor().getClass().getName());
        return m;
    }

    @Test
    void helpIsTheAnnotatedModelsHelp() {
        for (int width : new int[] {80, 120}) {
            assertEquals(help(annotated(), width), help(generated(), width));
        }
        assertTrue(help(generated(), 80).contains("--source-date-epoch=SECONDS"));
    }

    private static String help(CommandSpec spec, int width) {
        CommandLine cl = new CommandLine(spec);
        cl.setUsageHelpWidth(width);
        return cl.getUsageMessage(CommandLine.Help.Ansi.OFF);
    }

    @Test
    void commandLinesParseToTheSameFieldsOrTheSameError() throws Exception {
        List<String[]> lines = new ArrayList<>(List.of(
                new String[] {},
                new String[] {"--image", "tar:x.tar", "-o", "out.ext4", "--size", "64M", "--no-checksum-file", "-q"},
                new String[] {"--image=dir:/srv", "--size", "auto", "--free", "1G", "--add", "a:/b", "--add", "c:/d:0755",
                    "--env", "A=1", "--inode-ratio", "8192", "--block-size", "1024", "--label", "root", "--uuid",
                    "6f1c9a4e-0c1e-4c5e-9b7b-1f2a3b4c5d6e", "--hash-seed", "00000000-0000-0000-0000-000000000001"},
                new String[] {"--agent", "agent", "--agent-init", "PID1", "--service-user", "svc:2000:2000", "--runlevel",
                    "default", "--root-password", "x", "--host-libs", "--no-boot-check", "--init", "/sbin/openrc-init"},
                new String[] {"--boot-test", "--kernel", "vmlinux", "--mem", "256", "--cpus", "2", "--vmm", "qemu",
                    "--accel", "tcg", "--timeout", "30", "--boot-expect", "ready", "--append", "quiet"},
                new String[] {"--push", "reg/x:1", "--push-compression", "zstd", "--json", "--stacktrace", "--verify",
                    "--source-date-epoch", "1700000000", "--clamp-times", "--inline-data", "--no-sparse", "--no-sync"},
                new String[] {"--size", "lots"},
                new String[] {"--block-size", "four"},
                new String[] {"--agent-init", "systemd"},
                new String[] {"--no-such-option"},
                new String[] {"--image"},
                new String[] {"-q", "extra-argument"},
                new String[] {"--help"},
                new String[] {"-V"},
                new String[] {"--service-user", "nobody:x:y"},
                new String[] {"--inodes", "100", "--locked", "--lock", "k.lock", "--print-config", "-f", "kiln.yaml"}));
        // Random mixtures of the lines' words, with a fixed seed that can be changed.
        long seed = Long.getLong("kiln.test.seed", 20261205L);
        Random r = new Random(seed);
        List<String> words = new ArrayList<>();
        lines.forEach(l -> words.addAll(List.of(l)));
        for (int i = 0; i < 200; i++) {
            String[] l = new String[r.nextInt(8)];
            for (int j = 0; j < l.length; j++) {
                l[j] = words.get(r.nextInt(words.size()));
            }
            lines.add(l);
        }
        int parsed = 0;
        for (String[] line : lines) {
            String a = parse(new BuildCommand(), false, line);
            String g = parse(new BuildCommand(), true, line);
            assertEquals(a, g, "seed " + seed + ": " + String.join(" ", line));
            parsed += a.startsWith("error") ? 0 : 1;
        }
        assertTrue(parsed > 20, "too few lines parsed without an error to compare fields: " + parsed);
    }

    /** The command's fields after parsing {@code args}, or the parse error, as text. */
    private static String parse(BuildCommand c, boolean generated, String... args) throws Exception {
        CommandLine cl = generated ? new CommandLine(BuildModel.spec(c)) : new CommandLine(c);
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setOverwrittenOptionsAllowed(true);
        try {
            cl.parseArgs(args);
        } catch (CommandLine.ParameterException e) {
            return "error: " + e.getMessage();
        }
        StringBuilder s = new StringBuilder();
        fields(c, s);
        assertFalse(c.spec == null, "the @Spec field is set");
        return s.toString();
    }

    private static void fields(Object o, StringBuilder s) throws IllegalAccessException {
        for (Class<?> k = o.getClass(); k != Object.class; k = k.getSuperclass()) {
            for (Field f : k.getDeclaredFields()) {
                if (Modifier.isStatic(f.getModifiers()) || f.getType() == CommandSpec.class) {
                    continue;
                }
                f.setAccessible(true);
                if (f.isAnnotationPresent(CommandLine.Mixin.class)) {
                    fields(f.get(o), s);
                    continue;
                }
                s.append(k.getSimpleName()).append('.').append(f.getName()).append('=').append(f.get(o)).append('\n');
            }
        }
    }

    @Test
    void aCommandLineNamingBuildUsesTheCodeBuiltModelAndHelpPagesTheAnnotatedOne() {
        ArgSpec fast = Kiln.commandLine("build").getSubcommands().get("build").getCommandSpec().findOption("--size");
        ArgSpec full = Kiln.commandLine().getSubcommands().get("build").getCommandSpec().findOption("--size");
        assertEquals("dev.kiln.cli.BuildModel$Field", fast.getter().getClass().getName());
        assertEquals("picocli.CommandLine$Model$FieldBinding", full.getter().getClass().getName());
    }
}
