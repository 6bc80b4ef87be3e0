using ActorSim.Domain;
using ActorSim.Persistence.Serialization;

namespace ActorSim.Persistence.Journal;

/// <summary>Turns payloads into stored fields and back: domain events under their alias (decision
/// events compact, the others as JSON; <see cref="EventData.Of"/>),
/// anything else through Akka's serialization (bytes as base64).</summary>
public sealed class PayloadCodec(Akka.Serialization.Serialization serialization)
{
    public void Encode(object payload, out string? type, out int version, out EventData? data,
        out int serializerId, out string? manifest, out string? bytes)
    {
        if (payload is IDomainEvent e && DomainEventSerializer.IsDomainEvent(e))
        {
            type = DomainEventSerializer.AliasOf(e.GetType());
            version = DomainEventSerializer.VersionOf(type);
            data = EventData.Of(e);
            serializerId = 0;
            manifest = null;
            bytes = null;
            return;
        }
        var ser = serialization.FindSerializerFor(payload);
        type = null;
        version = 0;
        data = null;
        serializerId = ser.Identifier;
        manifest = Akka.Serialization.Serialization.ManifestFor(ser, payload);
        bytes = Convert.ToBase64String(ser.ToBinary(payload));
    }

    public object Decode(string? type, int version, EventData? data, int serializerId, string? manifest, string? bytes) =>
        type is not null
            ? (data ?? throw new InvalidOperationException($"{type} without data")).Decode(type, version)
            : serialization.Deserialize(Convert.FromBase64String(bytes ?? ""), serializerId, manifest ?? "");
}
