using System.Text.Json;
using System.Text.RegularExpressions;
using ActorSim.Persistence.Serialization;

namespace ActorSim.Persistence.EventLog;

/// <summary>What System.Text.Json could not read in an event's <c>data</c>, said in the event log's
/// terms (event-log-format.md: "with file:line and the field"): the field as its path under
/// <c>data</c> (<c>data.vma.backing.pfnAtStart</c>, <c>data.decisions[3].inputs.gpa</c>) and what was
/// wrong with it — not the .NET type it was being read into, nor a byte position in the line.</summary>
internal static partial class DataFieldError
{
    public static (string Field, string Message) Describe(JsonException ex, JsonElement data)
    {
        // The serializer sets Path to where it stopped ("$.vma.start", "$.vmas[0]", "$"); a converter
        // that read a value with a serializer call of its own adds the path within that value
        // (NestedJsonException).
        var at = (ex.Path is ['$', .. var rest] ? rest : "") + (ex is NestedJsonException n ? n.Within : "");
        var message = ex.Message.Split('\n')[0];
        var cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut >= 0) message = message[..cut];

        // A required property: the path is the object's.
        if (Missing().Match(message) is { Success: true } missing)
        {
            var names = Names(missing.Groups["names"].Value);
            var others = names.Length > 1 ? $" (and {string.Join(", ", names.Skip(1))})" : "";
            return ($"data{at}.{names[0]}", "missing" + others);
        }
        // An unknown property: the path ends in its name.
        if (Unmapped().IsMatch(message)) return ($"data{at}", "unknown field");
        if (NotConverted().Match(message) is { Success: true } converted)
        {
            var expected = converted.Groups["type"].Value switch
            {
                "System.Boolean" => "true or false",
                "System.String" => "a string",
                "System.Byte" or "System.SByte" or "System.Int16" or "System.UInt16" or "System.Int32" or "System.UInt32"
                    or "System.Int64" or "System.UInt64" => "an integer",
                // A constructor parameter's value: the type named is the record's; the reader's own
                // error under it says what it wanted.
                _ => Wanted(ex.InnerException),
            };
            var value = ValueAt(data, at) is { } v ? Shown(v) : null;
            return ($"data{at}", (value, expected) switch
            {
                (null, null) => "not a valid value",
                (null, _) => $"expected {expected}",
                (_, null) => $"{value} is not a valid value",
                _ => $"{value}: expected {expected}",
            });
        }
        // A converter's own words: "expected …" said of the value there.
        if (message.StartsWith("expected ", StringComparison.Ordinal) && ValueAt(data, at) is { } there)
            return ($"data{at}", $"{Shown(there)}: {message}");
        return ($"data{at}", message);
    }

    /// <summary>What the reader wanted, from its error: "Cannot get the value of a token type 'String'
    /// as a number." (Utf8JsonReader), or a number out of an integer's bounds.</summary>
    private static string? Wanted(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            var m = e.Message;
            if (m.EndsWith(" as a number.", StringComparison.Ordinal) || e is FormatException && m.Contains("out of bounds for an ", StringComparison.Ordinal))
                return "an integer";
            if (m.EndsWith(" as a boolean.", StringComparison.Ordinal)) return "true or false";
            if (m.EndsWith(" as a string.", StringComparison.Ordinal)) return "a string";
        }
        return null;
    }

    // "JSON deserialization for type 'T' was missing required properties including: 'a', 'b'."
    [GeneratedRegex(@"missing required properties including: (?<names>.*?)\.?$")]
    private static partial Regex Missing();

    // "The JSON property 'x' could not be mapped to any .NET member contained in type 'T'."
    [GeneratedRegex(@"^The JSON property '.*' could not be mapped to any \.NET member")]
    private static partial Regex Unmapped();

    // "The JSON value could not be converted to T."
    [GeneratedRegex(@"^The JSON value could not be converted to (?<type>[^ ]+?)\.?$")]
    private static partial Regex NotConverted();

    private static string[] Names(string quoted) =>
        [.. quoted.Split(", ").Select(n => n.Trim('\''))];

    /// <summary>The JSON at <paramref name="at"/> (".a.b[2].c") under <paramref name="data"/>, if it is there.</summary>
    private static JsonElement? ValueAt(JsonElement data, string at)
    {
        var e = data;
        var i = 0;
        while (i < at.Length)
        {
            if (at[i] == '.')
            {
                var end = at.IndexOfAny(['.', '['], i + 1);
                if (end < 0) end = at.Length;
                if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(at[(i + 1)..end], out e)) return null;
                i = end;
            }
            else if (at[i] == '[')
            {
                var end = at.IndexOf(']', i);
                if (end < 0 || !int.TryParse(at.AsSpan(i + 1, end - i - 1), out var n)) return null;
                if (e.ValueKind != JsonValueKind.Array || n < 0 || n >= e.GetArrayLength()) return null;
                e = e[n];
                i = end + 1;
            }
            else return null;
        }
        return e;
    }

    private static string Shown(JsonElement v)
    {
        var text = v.GetRawText();
        return text.Length <= 40 ? text : text[..37] + "...";
    }
}
