using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using ActorSim.Domain;
using ActorSim.Domain.Invariants;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Vfio;

namespace ActorSim.Persistence.Serialization;

/// <summary>Domain events as JSON (System.Text.Json) under stable type aliases with a schema version.
/// The alias, not the C# type name, is what is stored: renaming a type does not change it. camelCase
/// fields, 64-bit numbers as "0x…" hex strings, VM flags as lists of VM_* names, enums by name.
/// An older schema version is upcast (JSON → JSON) before it is read.</summary>
public static class DomainEventSerializer
{
    private sealed record Registration(Type Type, string Alias, int Version, IReadOnlyDictionary<int, Func<JsonObject, JsonObject>> Upcasters);

    private static readonly Registration[] Registrations =
    [
        Reg<VmaMapped>("vma_mapped"),
        Reg<VmaRangeUnmapped>("vma_range_unmapped"),
        Reg<VmaProtectionChanged>("vma_protection_changed"),
        Reg<UserPtesPopulated>("user_ptes_populated"),
        Reg<UserPtesPopulatedBatch>("user_ptes_populated_batch"),
        Reg<UserPtesZapped>("user_ptes_zapped"),
        Reg<MmuNotifierInvalidateRangeStart>("mmu_notifier_invalidate_range_start"),
        Reg<MmuNotifierInvalidateRangeEnd>("mmu_notifier_invalidate_range_end"),
        Reg<VfioBarRequested>("vfio_bar_requested"),
        Reg<VfioMemoryToggled>("vfio_memory_toggled"),
        Reg<VfioPowerStateChanged>("vfio_power_state_changed"),
        Reg<VfioDeviceReset>("vfio_device_reset"),
        Reg<VfioBarsZapRequested>("vfio_bars_zap_requested"),
        // v2 added the VMAs that intersected the slot when it was set (for invariant I8 and explain);
        // a v1 event reads as "no VMAs recorded".
        Reg<MemslotSet>("memslot_set", version: 2, new Dictionary<int, Func<JsonObject, JsonObject>>
        {
            [1] = o => { o["vmas"] ??= new JsonArray(); return o; },
        }),
        Reg<MemslotDeleted>("memslot_deleted"),
        Reg<Stage2RangeUnmapped>("stage2_range_unmapped"),
        Reg<Stage2DeviceIoremapped>("stage2_device_ioremapped"),
        Reg<MmuInvalidateBegan>("mmu_invalidate_began"),
        Reg<MmuInvalidateEnded>("mmu_invalidate_ended"),
        Reg<Stage2FaultResolved>("stage2_fault_resolved"),
        Reg<Stage2FaultsResolved>("stage2_faults_resolved"),
        Reg<InvariantViolationDetected>("invariant_violation_detected"),
    ];

    private static Registration Reg<T>(string alias, int version = 1, IReadOnlyDictionary<int, Func<JsonObject, JsonObject>>? upcasters = null) where T : IDomainEvent =>
        new(typeof(T), alias, version, upcasters ?? new Dictionary<int, Func<JsonObject, JsonObject>>());

    /// <summary>Decider states, for snapshots.</summary>
    private static readonly (Type Type, string Alias)[] States =
    [
        (typeof(AddressSpace), "state_address_space"),
        (typeof(VfioDevice), "state_vfio_device"),
        (typeof(KvmVm), "state_kvm_vm"),
    ];

    public static bool IsState(object o) => States.Any(s => s.Type == o.GetType());

    /// <summary>A domain event or decider state as (alias@version, UTF-8 JSON); a decision event as
    /// (alias@version#c, its compact record, <see cref="CompactDecisions"/>), as the journal stores it,
    /// so a journal on Akka's serialization (the bench's peer) stores what ours does.</summary>
    public static (string Manifest, byte[] Bytes) ToBinary(object o)
    {
        if (o is IDomainEvent e && ByType.TryGetValue(e.GetType(), out var r))
            return CompactDecisions.Supports(e)
                ? ($"{r.Alias}@{r.Version}{CompactManifest}", CompactDecisions.Write(e))
                : ($"{r.Alias}@{r.Version}", JsonSerializer.SerializeToUtf8Bytes(e, e.GetType(), Options));
        var st = States.FirstOrDefault(s => s.Type == o.GetType());
        if (st.Type is null) throw new ArgumentException($"{o.GetType().Name} is not a domain event or decider state");
        return (st.Alias, JsonSerializer.SerializeToUtf8Bytes(o, st.Type, Options));
    }

    /// <summary>The manifest's suffix for a compact decision event (<see cref="ToBinary"/>); without it,
    /// the bytes are JSON, as every event was before.</summary>
    public const string CompactManifest = "#c";

    public static object FromBinary(string manifest, byte[] bytes)
    {
        var compact = manifest.EndsWith(CompactManifest, StringComparison.Ordinal);
        if (compact) manifest = manifest[..^CompactManifest.Length];
        var at = manifest.IndexOf('@');
        if (at > 0)
        {
            var (alias, version) = (manifest[..at], int.Parse(manifest[(at + 1)..], CultureInfo.InvariantCulture));
            return compact ? CompactDecisions.Read(alias, version, bytes) : FromJson(alias, version, JsonDocument.Parse(bytes).RootElement);
        }
        var st = States.FirstOrDefault(s => s.Alias == manifest);
        if (st.Type is null) throw new JsonException($"unknown manifest '{manifest}'");
        return JsonSerializer.Deserialize(bytes, st.Type, Options)!;
    }

    private static readonly Dictionary<Type, Registration> ByType = Registrations.ToDictionary(r => r.Type);
    private static readonly Dictionary<string, Registration> ByAlias = Registrations.ToDictionary(r => r.Alias, StringComparer.Ordinal);

    /// <summary>Every type through System.Text.Json's reflection-based converters (and ours for hex
    /// numbers, VM flags, page sets, stage-2 tables, enums by name): the reference for what JSON means.
    /// (Declared before <see cref="Options"/>: static initializers run in order.)</summary>
    public static JsonSerializerOptions General { get; } = CreateOptions();

    /// <summary>The serializer's options: <see cref="General"/> plus the hand-written reader of
    /// decision records (<see cref="DecisionRecordConverter"/>), which falls back on General.</summary>
    public static JsonSerializerOptions Options { get; } = WithFastReaders(General);

    private static JsonSerializerOptions WithFastReaders(JsonSerializerOptions general)
    {
        var o = new JsonSerializerOptions(general);
        o.Converters.Add(new DecisionRecordConverter(general));
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }

    private static JsonSerializerOptions CreateOptions()
    {
        var o = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
            RespectNullableAnnotations = false,
            IgnoreReadOnlyProperties = true, // computed properties (Vma.Length, Memslot.EndGpa, ...) are not data
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            // A field missing from an event is an error, not its type's default (event-log-format.md:
            // import rejects "a missing … field"). Every property is written (DefaultIgnoreCondition.Never),
            // so every property is required: in records and in record structs, which System.Text.Json
            // builds with their parameterless constructor (RespectRequiredConstructorParameters would
            // not reach them: a decision's leaf, outcome, pfn answer, VMA and policy are structs).
            TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { RequireEveryProperty } },
        };
        o.Converters.Add(new HexUInt64Converter());
        o.Converters.Add(new VmFlagsConverter());
        o.Converters.Add(new PageRangeSetConverter());
        o.Converters.Add(new Stage2TableConverter());
        o.Converters.Add(new JsonStringEnumConverter());
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }

    private static void RequireEveryProperty(JsonTypeInfo type)
    {
        if (type.Kind != JsonTypeInfoKind.Object) return;
        foreach (var p in type.Properties)
            if (OnlyWhenSet(type.Type, p.Name)) p.ShouldSerialize = (_, value) => value is not (null or false);
            else if (p.Set is not null || p.AssociatedParameter is not null) p.IsRequired = true; // not computed ones (Vma.Length): never read
    }

    /// <summary>Fields added after runs were recorded, written only when set and false when missing, so
    /// every event recorded before reads as it was and exports byte for byte as before: a decision's
    /// <c>nisv</c>, <c>s1ptw</c> and <c>cm</c> (the abort's syndrome bits: <see cref="FaultInputs.Nisv"/>,
    /// <see cref="FaultInputs.S1ptw"/>, <see cref="FaultInputs.Cm"/>) and <c>nisvToUser</c> (the VM's
    /// KVM_CAP_ARM_NISV_TO_USER, <see cref="FaultInputs.NisvToUser"/>); and a VM's own <c>nisvToUser</c> in
    /// its snapshot (<see cref="KvmVm.NisvToUser"/>) and its <c>ioRemaps</c> (<see cref="KvmVm.IoRemaps"/>,
    /// null when KVM mapped nothing itself), so a run's snapshots saved before they were added still
    /// recover (<c>run --resume</c>).</summary>
    private static bool OnlyWhenSet(Type type, string jsonName) =>
        type == typeof(FaultInputs) && jsonName is "nisv" or "s1ptw" or "cm" or "nisvToUser"
        || type == typeof(KvmVm) && jsonName is "nisvToUser" or "ioRemaps";

    public static IReadOnlyCollection<string> Aliases => ByAlias.Keys;
    public static bool IsDomainEvent(object o) => o is IDomainEvent && ByType.ContainsKey(o.GetType());
    public static string AliasOf(Type t) => ByType.TryGetValue(t, out var r) ? r.Alias : throw new ArgumentException($"{t.Name} has no event alias");
    public static int VersionOf(string alias) => ByAlias[alias].Version;
    public static bool IsKnownAlias(string alias) => ByAlias.ContainsKey(alias);
    public static Type TypeOf(string alias) => ByAlias[alias].Type;

    public static JsonElement ToJson(IDomainEvent e) => JsonSerializer.SerializeToElement(e, e.GetType(), Options);

    /// <summary>The event's JSON as UTF-8 bytes (what <see cref="ToJson"/> holds, without parsing it back).</summary>
    public static byte[] ToUtf8(IDomainEvent e) => JsonSerializer.SerializeToUtf8Bytes(e, e.GetType(), Options);

    public static void WriteTo(Utf8JsonWriter writer, IDomainEvent e) => JsonSerializer.Serialize(writer, e, e.GetType(), Options);

    /// <summary>Reads an event stored under <paramref name="alias"/> at schema <paramref name="version"/>.</summary>
    public static IDomainEvent FromJson(string alias, int version, JsonElement data)
    {
        if (!ByAlias.TryGetValue(alias, out var r)) throw new JsonException($"unknown event type '{alias}'");
        if (version > r.Version) throw new JsonException($"{alias} schema version {version} is newer than this build knows ({r.Version})");
        if (version < r.Version)
        {
            var node = JsonNode.Parse(data.GetRawText()) as JsonObject ?? throw new JsonException($"{alias}: data is not an object");
            for (var v = version; v < r.Version; v++)
                node = r.Upcasters.TryGetValue(v, out var up) ? up(node) : throw new JsonException($"{alias}: no upcaster from schema version {v}");
            return (IDomainEvent)node.Deserialize(r.Type, Options)!;
        }
        // JSON null would deserialize to a null event: refuse it as any other malformed data.
        return (IDomainEvent)(data.Deserialize(r.Type, Options) ?? throw new JsonException($"{alias}: data is null"));
    }

    /// <summary>Reads an event of the current schema version of <paramref name="alias"/> from the
    /// reader, which is on the data object's first token (event log lines carry no schema version: an
    /// exported event is always at the current one).</summary>
    public static IDomainEvent FromJson(string alias, ref Utf8JsonReader reader)
    {
        if (!ByAlias.TryGetValue(alias, out var r)) throw new JsonException($"unknown event type '{alias}'");
        // The decision events (most of a run) by hand when written as the serializer writes them;
        // anything else from the start again through System.Text.Json, which decides what it means.
        var checkpoint = reader;
        if (DecisionRecordConverter.TryReadEvent(alias, ref reader, out var fast)) return fast!;
        reader = checkpoint;
        return (IDomainEvent)(JsonSerializer.Deserialize(ref reader, r.Type, Options) ?? throw new JsonException($"{alias}: data is null"));
    }

    /// <summary>Reads an event stored under <paramref name="alias"/> at schema <paramref name="version"/>
    /// from its UTF-8 JSON: at the current version straight from the bytes, an older one upcast first.</summary>
    public static IDomainEvent FromUtf8(string alias, int version, ReadOnlySpan<byte> utf8)
    {
        if (!ByAlias.TryGetValue(alias, out var r) || version != r.Version)
        {
            using var doc = JsonDocument.Parse(utf8.ToArray());
            return FromJson(alias, version, doc.RootElement);
        }
        // The decision events in the bytes this build writes, matched without a tokenizer; anything else read.
        if (DecisionRecordConverter.TryMatchEvent(alias, utf8, out var written, out var consumed) && consumed == utf8.Length) return written!;
        var reader = new Utf8JsonReader(utf8);
        reader.Read();
        var e = FromJson(alias, ref reader);
        return reader.Read() ? throw new JsonException($"{alias}: text after the event's JSON") : e;
    }

    private sealed class HexUInt64Converter : JsonConverter<ulong>
    {
        public override ulong Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType == JsonTokenType.Number) return reader.GetUInt64();
            if (reader.TokenType != JsonTokenType.String) throw new JsonException("expected a 0x hex number");
            var s = reader.GetString()!;
            if (s.StartsWith("0x", StringComparison.Ordinal) && ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var v)) return v;
            if (s.Length > 2 && s.StartsWith("0x", StringComparison.Ordinal) && !s.AsSpan(2).ContainsAnyExcept("0123456789abcdefABCDEF"))
                throw new JsonException($"'{s}' is out of range (more than 64 bits)");
            throw new JsonException($"'{s}' is not a 0x hex number");
        }

        public override void Write(Utf8JsonWriter writer, ulong value, JsonSerializerOptions options) =>
            writer.WriteStringValue($"0x{value:x}");
    }

    private sealed class VmFlagsConverter : JsonConverter<VmFlags>
    {
        public override VmFlags Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.StartArray) throw new JsonException("expected a list of VM_* names");
            var f = VmFlags.VM_NONE;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                var name = reader.GetString() ?? "";
                if (VmFlagBits.TryParse(name, out var bit)) f |= bit;
                else if (name.StartsWith("0x", StringComparison.Ordinal) && ulong.TryParse(name.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var raw)) f |= (VmFlags)raw;
                else throw new JsonException($"unknown VM flag '{name}'");
            }
            return f;
        }

        public override void Write(Utf8JsonWriter writer, VmFlags value, JsonSerializerOptions options)
        {
            writer.WriteStartArray();
            foreach (var n in VmFlagBits.Names(value)) writer.WriteStringValue(n);
            writer.WriteEndArray();
        }
    }

    private sealed class Stage2TableConverter : JsonConverter<Stage2Table>
    {
        public override Stage2Table Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            (JsonSerializer.Deserialize<Stage2Leaf[]>(ref reader, options) ?? []).Aggregate(Stage2Table.Empty, (t, l) => t.Install(l));

        public override void Write(Utf8JsonWriter writer, Stage2Table value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize(writer, value.Leaves.ToArray(), options);
    }

    private sealed class PageRangeSetConverter : JsonConverter<PageRangeSet>
    {
        public override PageRangeSet Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            var ranges = NestedJsonException.Deserialize<ulong[][]>(ref reader, options) ?? [];
            // A null range (a damaged log: "[null]") is a format error like a range of the wrong length.
            // All added in one copy (AddAll), not one per range.
            return PageRangeSet.Empty.AddAll([.. ranges.Select(r => r is { Length: 2 } ? (r[0], r[1]) : throw new JsonException("a range is [start, end]"))]);
        }

        public override void Write(Utf8JsonWriter writer, PageRangeSet value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize(writer, value.Ranges.Select(r => new[] { r.Start, r.End }).ToArray(), options);
    }
}
