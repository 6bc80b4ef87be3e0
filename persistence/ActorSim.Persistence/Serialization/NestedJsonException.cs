using System.Text.Json;

namespace ActorSim.Persistence.Serialization;

/// <summary>An error a converter met reading a value through a serializer call of its own, whose path
/// (<see cref="Within"/>, ".inputs.slot") starts at that value; the serializer that called the
/// converter sets <see cref="JsonException.Path"/> to the value itself (it passes on an error whose
/// path is set as it is), so the two together say where in the event it was.</summary>
internal sealed class NestedJsonException(string message, string within, Exception inner) : JsonException(message, inner)
{
    public string Within { get; } = within;

    /// <summary><see cref="JsonSerializer.Deserialize{T}(ref Utf8JsonReader, JsonSerializerOptions)"/>
    /// from inside a converter, an error's path within the value kept.</summary>
    public static T? Deserialize<T>(ref Utf8JsonReader reader, JsonSerializerOptions options)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(ref reader, options);
        }
        catch (JsonException ex) when (ex.Path is ['$', ..])
        {
            throw new NestedJsonException(ex.Message, ex.Path[1..] + (ex is NestedJsonException n ? n.Within : ""), ex);
        }
    }
}
