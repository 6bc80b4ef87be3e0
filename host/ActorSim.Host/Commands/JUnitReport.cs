using System.Globalization;
using System.Text;
using System.Xml;
using ActorSim.Actors.Scenarios;
using ActorSim.Persistence.EventLog;

namespace ActorSim.Host.Commands;

/// <summary><c>actorsim scenario --junit FILE</c>: the scenarios' results as JUnit XML, the report CI
/// servers (Jenkins, GitLab, GitHub's test reporters) read. A scenario is a <c>testsuite</c>, each of its
/// expectations a <c>testcase</c> named as its line on the console without what was observed ("step 4
/// (line 13): vm1 gpa 0x8000001000: s2 Normal-NC"), so a case keeps its name from run to run and kernel
/// to kernel; a failed
/// one holds a <c>failure</c> with the whole line ("… — got s2 Device-nGnRE"). An invalid file is a suite
/// with one <c>error</c> (file:line: field: why), as the command prints it; nothing ran then.
/// <para>The file is opened before anything runs, so a path that cannot be written fails at once (exit 2),
/// and written when the command ends, with exit 0, 1 or 2; when the scenarios could not run (exit 3, the
/// database) it is removed.</para></summary>
public sealed class JUnitReport : IDisposable
{
    private readonly string _path;
    private readonly Stream _file;
    private readonly List<Suite> _suites = [];

    private sealed record Suite(string Name, string File, string? Run, string? Kernel, double Seconds,
        IReadOnlyList<ExpectationResult> Results, string? Error);

    private readonly bool _special;

    private JUnitReport(string path, bool special, Stream file) => (_path, _special, _file) = (path, special, file);

    /// <summary>The report at <paramref name="path"/>, created (or emptied) now. A path that is no regular
    /// file (<c>/dev/null</c>, a FIFO) or names a descriptor (<c>/dev/stdout</c>: <see cref="SpecialFiles.WritesInPlace"/>)
    /// is written into and never removed (<c>--junit /dev/stdout</c> with the output sent to a file removed
    /// the /dev/stdout link, as root, when the database was unreachable).</summary>
    /// <exception cref="IOException">or <see cref="UnauthorizedAccessException"/>: it cannot be written.</exception>
    public static JUnitReport Create(string path) =>
        new(path, SpecialFiles.WritesInPlace(path), SpecialFiles.OpenDescriptor(path) ?? new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read));

    public string Path => _path;

    public void Ran(Scenario s, string run, double seconds, IReadOnlyList<ExpectationResult> results) =>
        _suites.Add(new Suite(s.Name, s.File, run, s.Policy.ToString(), seconds, results, null));

    public void Invalid(string file, string why) => _suites.Add(new Suite(file, file, null, null, 0, [], why));

    /// <summary>The expectation a result checked, without what was observed (<see cref="ExpectationResult.Expected"/>).</summary>
    private static string CaseName(ExpectationResult r) => $"step {r.Step} (line {r.Line}): {r.Expected}";

    /// <summary>Writes the report. XML 1.0 has no way to write some characters (most controls): a file
    /// name or a message holding one gets U+FFFD in its place.</summary>
    public void Write()
    {
        var settings = new XmlWriterSettings { Indent = true, Encoding = new UTF8Encoding(false) };
        using var x = XmlWriter.Create(_file, settings);
        x.WriteStartDocument();
        x.WriteStartElement("testsuites");
        x.WriteAttributeString("name", "actorsim scenario");
        x.WriteAttributeString("tests", Count(s => s.Results.Count + (s.Error is null ? 0 : 1)));
        x.WriteAttributeString("failures", Count(s => s.Results.Count(r => !r.Passed)));
        x.WriteAttributeString("errors", Count(s => s.Error is null ? 0 : 1));
        x.WriteAttributeString("time", Seconds(_suites.Sum(s => s.Seconds)));
        foreach (var s in _suites)
        {
            x.WriteStartElement("testsuite");
            x.WriteAttributeString("name", Clean(s.Name));
            x.WriteAttributeString("file", Clean(s.File));
            x.WriteAttributeString("tests", (s.Results.Count + (s.Error is null ? 0 : 1)).ToString(CultureInfo.InvariantCulture));
            x.WriteAttributeString("failures", s.Results.Count(r => !r.Passed).ToString(CultureInfo.InvariantCulture));
            x.WriteAttributeString("errors", s.Error is null ? "0" : "1");
            x.WriteAttributeString("time", Seconds(s.Seconds));
            if (s.Run is not null)
            {
                x.WriteStartElement("properties");
                Property(x, "run", s.Run);
                Property(x, "kernel", s.Kernel!);
                x.WriteEndElement();
            }
            foreach (var r in s.Results)
            {
                x.WriteStartElement("testcase");
                x.WriteAttributeString("classname", Clean(s.Name));
                x.WriteAttributeString("name", Clean(CaseName(r)));
                x.WriteAttributeString("file", Clean(s.File));
                x.WriteAttributeString("line", r.Line.ToString(CultureInfo.InvariantCulture));
                if (!r.Passed)
                {
                    x.WriteStartElement("failure");
                    x.WriteAttributeString("message", Clean(r.Text));
                    x.WriteString(Clean(r.ToString()));
                    x.WriteEndElement();
                }
                x.WriteEndElement();
            }
            if (s.Error is not null)
            {
                x.WriteStartElement("testcase");
                x.WriteAttributeString("classname", Clean(s.Name));
                x.WriteAttributeString("name", "the scenario file is valid");
                x.WriteAttributeString("file", Clean(s.File));
                x.WriteStartElement("error");
                x.WriteAttributeString("message", Clean(s.Error));
                x.WriteEndElement();
                x.WriteEndElement();
            }
            x.WriteEndElement();
        }
        x.WriteEndElement();
        x.WriteEndDocument();
    }

    private string Count(Func<Suite, int> of) => _suites.Sum(of).ToString(CultureInfo.InvariantCulture);

    private static string Seconds(double s) => s.ToString("0.000", CultureInfo.InvariantCulture);

    private static void Property(XmlWriter x, string name, string value)
    {
        x.WriteStartElement("property");
        x.WriteAttributeString("name", name);
        x.WriteAttributeString("value", Clean(value));
        x.WriteEndElement();
    }

    internal static string Clean(string text)
    {
        if (!text.Any(c => !XmlConvert.IsXmlChar(c) && !char.IsSurrogate(c))) return text;
        var b = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { b.Append(text, i++, 2); continue; }
            b.Append(XmlConvert.IsXmlChar(text[i]) ? text[i] : '\uFFFD');
        }
        return b.ToString();
    }

    /// <summary>Removes the file: nothing is reported (the scenarios could not run).</summary>
    public void Discard()
    {
        _file.Dispose();
        Abandon();
    }

    /// <summary>Removes the file without touching its stream (for a signal that ends the process at once,
    /// when the report may be being written): no empty or half report left. Not a device or a pipe:
    /// `scenario --junit /dev/null` with the database unreachable, as root, deleted /dev/null.</summary>
    public void Abandon()
    {
        if (_special) return;
        try { File.Delete(_path); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    public void Dispose() => _file.Dispose();
}
