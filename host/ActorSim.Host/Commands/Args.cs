namespace ActorSim.Host.Commands;

/// <summary>A small option parser: --name value, --flag; anything unknown is a usage error (exit 2).</summary>
public sealed class Args
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    public List<string> Positional { get; } = [];

    public static Args Parse(string command, string[] args, string[] flags, string[] valued)
    {
        var a = new Args();
        for (var i = 0; i < args.Length; i++)
        {
            var s = args[i];
            // An option given twice would silently take one of its values (which one a user meant is unknown).
            if ((flags.Contains(s) || valued.Contains(s)) && a._options.ContainsKey(s)) throw new UsageException($"{command}: {s} given twice");
            if (flags.Contains(s)) a._options[s] = null;
            else if (valued.Contains(s))
            {
                if (i + 1 >= args.Length) throw new UsageException($"{command}: {s} needs a value");
                a._options[s] = args[++i];
            }
            else if (s.StartsWith("--", StringComparison.Ordinal)) throw new UsageException($"{command}: unknown option '{s}'");
            else a.Positional.Add(s);
        }
        return a;
    }

    /// <summary>The value of an option naming a file to write, checked before any work is done: its
    /// directory must exist and it must not be a directory (a run would otherwise end with nowhere to
    /// put its export).</summary>
    public string? GetOutputFile(string command, string name) => Get(name) is { } path ? CheckOutputFile(command, name, path) : null;

    /// <summary><paramref name="path"/>, if a file can be written there (see <see cref="GetOutputFile"/>); "-" is the
    /// standard output (/dev/stdout), as in other Unix tools (it wrote a file named "-").</summary>
    public static string CheckOutputFile(string command, string name, string path)
    {
        if (path == "-") return "/dev/stdout";
        // (An empty path ended unhandled, exit 134, from Path.GetFullPath.)
        if (path.Length == 0) throw new UsageException($"{command}: {name} '': an empty path, not a file");
        if (Directory.Exists(path)) throw new UsageException($"{command}: {name} {path}: a directory, not a file");
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null && !Directory.Exists(dir)) throw new UsageException($"{command}: {name} {path}: no such directory {dir}");
        return path;
    }

    /// <summary>Sends the command's own lines to stderr when one of its outputs names the standard output
    /// (<c>--export /dev/stdout</c>, <see cref="Persistence.EventLog.SpecialFiles.Descriptor"/>), so that
    /// output is alone on it: <c>run --export /dev/stdout &gt; run.jsonl</c> put the run's lines into the log.</summary>
    public static void KeepStandardOutputFor(params string?[] outputs)
    {
        if (outputs.Any(o => o is not null && Persistence.EventLog.SpecialFiles.Descriptor(o) == 1)) Console.SetOut(Console.Error);
    }

    /// <summary>Refuses an output file that is another file of the command (<see cref="Persistence.EventLog.SpecialFiles.SameFile"/>):
    /// it would overwrite it, or the two would write over each other.</summary>
    public static void CheckNotSameFile(string command, string name, string path, string otherName, string other)
    {
        if (Persistence.EventLog.SpecialFiles.SameFile(path, other))
            throw new UsageException($"{command}: {name} {path} is the same file as {otherName} {other}: one file cannot be both");
    }

    /// <summary>An input file's path: "-" is the standard input (/dev/stdin), as in other Unix tools.</summary>
    public static string InputFile(string path) => path == "-" ? "/dev/stdin" : path;

    /// <summary>What keeps <paramref name="path"/> from being read as a file, as "PATH: why", or null
    /// when it is one.</summary>
    public static string? InputFileProblem(string path) =>
        path.Length == 0 ? "'': an empty path, not a file"
        : File.Exists(path) ? null
        : $"{path}: {(Directory.Exists(path) ? "a directory, not a file" : "no such file")}";

    /// <summary>Refuses the first of <paramref name="names"/> that was given: it would be ignored
    /// (<paramref name="why"/> says what sets it instead).</summary>
    public void Refuse(string command, string[] names, string why)
    {
        if (names.FirstOrDefault(Has) is { } given) throw new UsageException($"{command}: {given} does not apply to {why}");
    }

    public bool Has(string name) => _options.ContainsKey(name);
    public string? Get(string name) => _options.TryGetValue(name, out var v) ? v : null;

    public long GetLong(string command, string name, long fallback)
    {
        var v = Get(name);
        if (v is null) return fallback;
        return long.TryParse(v, out var n) ? n : throw new UsageException($"{command}: {name} '{v}' is not a number");
    }

    /// <summary>A number that must lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public long GetLong(string command, string name, long fallback, long min, long max)
    {
        var n = GetLong(command, name, fallback);
        if (Has(name) && (n < min || n > max)) throw new UsageException($"{command}: {name} {n} is out of range ({min}..{max})");
        return n;
    }

    /// <summary>Durations like 30s, 5m, 2h, 7d, 500ms.</summary>
    public TimeSpan GetDuration(string command, string name, TimeSpan fallback)
    {
        var v = Get(name);
        if (v is null) return fallback;
        return ParseDuration(v) ?? throw new UsageException($"{command}: {name} '{v}' is not a duration (30s, 5m, 2h)");
    }

    /// <summary>A duration (30s, 5m, 2h, 7d, 500ms), or null when <paramref name="v"/> is not one.</summary>
    public static TimeSpan? ParseDuration(string v)
    {
        foreach (var (suffix, unit) in new[] { ("ms", TimeSpan.FromMilliseconds(1)), ("s", TimeSpan.FromSeconds(1)), ("m", TimeSpan.FromMinutes(1)), ("h", TimeSpan.FromHours(1)), ("d", TimeSpan.FromDays(1)) })
            if (v.EndsWith(suffix, StringComparison.Ordinal) && double.TryParse(v[..^suffix.Length], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 0)
                // Longer than TimeSpan holds (about 29,000 years; NaN and infinity too): not a duration.
                return unit.Ticks * n < TimeSpan.MaxValue.Ticks ? unit * n : null;
        return null;
    }
}

public sealed class UsageException(string message) : Exception(message);
