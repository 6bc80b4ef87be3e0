using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using ActorSim.Persistence.Serialization;

namespace ActorSim.Persistence.EventLog;

/// <summary>What System.Text.Json could not read in an event's <c>data</c>, said in the event log's
/// terms (event-log-format.md: "with file:line and the field"): the field as its path under
/// <c>data</c> (<c>data.vma.backing.pfnAtStart</c>, <c>data.decisions[3].inputs.gpa</c>) and what was
/// wrong with it — not the .NET type it was being read into, nor a byte position in the line. The
/// serializer says which kind of error it met only in its message's words (English here); a message
/// not recognised is passed on as it is, with the path.</summary>
internal static partial class DataFieldError
{
    /// <summary>The field and the message for <paramref name="ex"/>, met reading <paramref name="data"/>
    /// as a <paramref name="eventType"/>.</summary>
    public static (string Field, string Message) Describe(JsonException ex, Type eventType, JsonElement data)
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
            // The type the message names is the field's, or for a constructor parameter the record's: the
            // reader's own error under it says what it wanted, else the field's type does; a list a
            // converter of ours reads (a VMA's PTE ranges) is named by the message alone.
            var expected = Wanted(ex.InnerException) ?? Expected(TypeAt(eventType, at))
                ?? (converted.Groups["type"].Value.EndsWith("[]", StringComparison.Ordinal) ? "a list" : null);
            var found = ValueAt(data, at);
            var value = found is { } v ? Shown(v) : null;
            // The reader's error is the same for 12.5 and for 99999999999 in an Int32: an integer
            // written there is out of the field's range.
            if (expected == "an integer" && found is { ValueKind: JsonValueKind.Number } number && IsIntegerLiteral(number))
                return ($"data{at}", $"{value} is out of range" + (Bounds(TypeAt(eventType, at)) is { } b ? $" ({b})" : ""));
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
            if (m.EndsWith(" as a number.", StringComparison.Ordinal) || e is FormatException && m.Contains("is out of bounds for a", StringComparison.Ordinal))
                return "an integer";
            if (m.EndsWith(" as a boolean.", StringComparison.Ordinal)) return "true or false";
            if (m.EndsWith(" as a string.", StringComparison.Ordinal)) return "a string";
        }
        return null;
    }

    /// <summary>A JSON number written as an integer (no fraction, no exponent).</summary>
    public static bool IsIntegerLiteral(JsonElement number) => IntegerLiteral().IsMatch(number.GetRawText());

    [GeneratedRegex(@"^-?[0-9]+$")]
    private static partial Regex IntegerLiteral();

    /// <summary>The range of an integer field's type, as a user reads it.</summary>
    private static string? Bounds(Type? type) => type switch
    {
        _ when type == typeof(int) => $"{int.MinValue} to {int.MaxValue}",
        _ when type == typeof(long) => $"{long.MinValue} to {long.MaxValue}",
        _ when type == typeof(byte) => $"0 to {byte.MaxValue}",
        _ when type == typeof(uint) => $"0 to {uint.MaxValue}",
        _ when type == typeof(ulong) => $"0 to {ulong.MaxValue}",
        _ => null,
    };

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

    /// <summary>What a value of <paramref name="type"/> is written as: an enum's names (the serializer
    /// writes them as declared; a flag set as a comma-separated list of them), an object, a list.</summary>
    private static string? Expected(Type? type)
    {
        if (type is null) return null;
        if (type.IsEnum)
        {
            var listed = string.Join(", ", Enum.GetNames(type));
            return type.IsDefined(typeof(FlagsAttribute), false) ? $"a comma-separated list of {listed}" : $"one of {listed}";
        }
        if (type == typeof(string)) return "a string";
        return DomainEventSerializer.General.GetTypeInfo(type).Kind switch
        {
            JsonTypeInfoKind.Object => "an object",
            JsonTypeInfoKind.Enumerable => "a list",
            _ => null,
        };
    }

    /// <summary>The type of the value at <paramref name="at"/> in a <paramref name="type"/>, as the
    /// serializer reads it (its properties by their JSON names, a list's elements); null past a value
    /// a converter of ours reads.</summary>
    private static Type? TypeAt(Type type, string at)
    {
        if (Segments(at) is not { } parts) return null;
        foreach (var (name, _) in parts)
        {
            var info = DomainEventSerializer.General.GetTypeInfo(type);
            var next = name is null ? info.ElementType : info.Properties.FirstOrDefault(p => p.Name == name)?.PropertyType;
            if (next is null) return null;
            type = Nullable.GetUnderlyingType(next) ?? next;
        }
        return type;
    }

    /// <summary>The JSON at <paramref name="at"/> under <paramref name="data"/>, if it is there.</summary>
    private static JsonElement? ValueAt(JsonElement data, string at)
    {
        if (Segments(at) is not { } parts) return null;
        var e = data;
        foreach (var (name, index) in parts)
        {
            if (name is not null)
            {
                if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out e)) return null;
            }
            else if (e.ValueKind != JsonValueKind.Array || index >= e.GetArrayLength()) return null;
            else e = e[index];
        }
        return e;
    }

    /// <summary>A path as the serializer writes it (".a.b[2].c") taken apart: a property's name, or an
    /// element's index (name null); null for one with a part it cannot read (a name in brackets, "['a b']").</summary>
    private static List<(string? Name, int Index)>? Segments(string at)
    {
        var parts = new List<(string?, int)>();
        var i = 0;
        while (i < at.Length)
        {
            if (at[i] == '.')
            {
                var end = at.IndexOfAny(['.', '['], i + 1);
                if (end < 0) end = at.Length;
                parts.Add((at[(i + 1)..end], 0));
                i = end;
            }
            else if (at[i] == '[' && at.IndexOf(']', i) is var close and > 0 && int.TryParse(at.AsSpan(i + 1, close - i - 1), out var n) && n >= 0)
            {
                parts.Add((null, n));
                i = close + 1;
            }
            else return null;
        }
        return parts;
    }

    private static string Shown(JsonElement v)
    {
        var text = v.GetRawText();
        return text.Length <= 40 ? text : text[..37] + "...";
    }
}
