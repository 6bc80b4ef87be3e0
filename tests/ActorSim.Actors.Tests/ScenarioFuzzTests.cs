using ActorSim.Actors.Scenarios;
using CsCheck;

namespace ActorSim.Actors.Tests;

/// <summary>Random and mutated scenario files: the parser either accepts them or reports
/// file:line: field — never another exception.</summary>
public class ScenarioFuzzTests
{
    private static readonly string[] Shipped = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "scenarios"), "*.yaml")
        .Order(StringComparer.Ordinal).Select(File.ReadAllText).ToArray();

    private static readonly string[] Tokens =
        ["{", "}", "[", "]", ":", ",", "-", "\n", "  ", "\"", "'", "#", "0x", "MiB", "&a", "*a", "!!str", "|", ">", "null", "~", "true", "1e9", "-1", "99999999999999999999"];

    private static void ParseOrFormatError(string text)
    {
        try
        {
            ScenarioParser.Parse(text, "fuzz.yaml");
        }
        catch (ScenarioFormatException e)
        {
            if (e.Line < 0 || string.IsNullOrEmpty(e.Field) || !e.Message.StartsWith("fuzz.yaml:", StringComparison.Ordinal))
                throw new Exception($"bad error: {e.Message}");
        }
    }

    [Fact]
    public void Mutated_scenario_files_never_throw_anything_but_a_format_error()
    {
        var gen =
            from file in Gen.Int[0, Shipped.Length - 1]
            from edits in Gen.Select(Gen.Int[0, 3], Gen.Int[0, 100000], Gen.Int[0, Tokens.Length - 1], Gen.Int[1, 40]).Array[1, 6]
            select (file, edits);
        gen.Sample(x =>
        {
            var text = Shipped[x.file];
            foreach (var (kind, at, token, len) in x.edits)
            {
                var i = text.Length == 0 ? 0 : at % text.Length;
                text = kind switch
                {
                    0 => text.Remove(i, Math.Min(len, text.Length - i)),
                    1 => text.Insert(i, Tokens[token]),
                    2 => text[..i],
                    _ => text.Remove(i, Math.Min(1, text.Length - i)).Insert(i, Tokens[token]),
                };
            }
            ParseOrFormatError(text);
        }, iter: 2000);
    }

    [Fact]
    public void Random_text_never_throws_anything_but_a_format_error() =>
        Gen.String.Sample(ParseOrFormatError, iter: 2000);

    [Fact]
    public void An_oversized_file_is_refused_before_it_is_read()
    {
        var path = Path.Combine(Path.GetTempPath(), $"huge-{Environment.ProcessId}.yaml");
        using (var f = File.Create(path)) f.SetLength(ScenarioParser.MaxFileBytes + 1);
        var e = Assert.Throws<ScenarioFormatException>(() => ScenarioParser.ParseFile(path));
        Assert.Equal("file", e.Field);
        File.Delete(path);
    }
}
