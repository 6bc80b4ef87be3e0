using Akka.Actor;
using Akka.Serialization;

namespace ActorSim.Persistence.Serialization;

/// <summary>Akka serializer for domain events and decider states (snapshots): the same JSON and
/// aliases as the journal, instead of Akka's default Newtonsoft with $type metadata.</summary>
public sealed class AkkaDomainSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 4711;
    public override int Identifier => Id;
    public override string Manifest(object o) => DomainEventSerializer.ToBinary(o).Manifest;
    public override byte[] ToBinary(object obj) => DomainEventSerializer.ToBinary(obj).Bytes;
    public override object FromBinary(byte[] bytes, string manifest) => DomainEventSerializer.FromBinary(manifest, bytes);
}
