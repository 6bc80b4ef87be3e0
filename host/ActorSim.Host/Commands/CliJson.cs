using System.Text.Encodings.Web;
using System.Text.Json;

namespace ActorSim.Host.Commands;

/// <summary>How the commands print JSON (<c>--json</c>): characters as they are where JSON allows them,
/// not escaped for a web page — the serializer's default wrote a time's '+' as \u002B and explain's "->"
/// as "-\u003E". Quotes, backslashes and control characters are still escaped.</summary>
internal static class CliJson
{
    /// <summary>Fields named as written.</summary>
    public static readonly JsonSerializerOptions Plain = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Fields in camelCase (<c>runs</c>, <c>summary</c>, <c>explain</c>).</summary>
    public static readonly JsonSerializerOptions CamelCase = new(Plain) { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
}
