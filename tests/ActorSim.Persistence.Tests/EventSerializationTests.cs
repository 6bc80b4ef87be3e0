using System.Text.Json;
using ActorSim.Domain;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Vfio;
using ActorSim.Persistence.Serialization;

namespace ActorSim.Persistence.Tests;

/// <summary>Domain events on disk: stable aliases, a schema version, readable JSON, upcasting.</summary>
public class EventSerializationTests
{
    private const ulong MiB = 1UL << 20;

    /// <summary>Events of every type, from a short run of the composed deciders.</summary>
    public static IReadOnlyList<IDomainEvent> SampleEvents()
    {
        var k = new SyncKernel(KernelPolicy.Of("6.9"));
        k.AddDevice(DeviceLayout.Build("gpu0", VfioDriver.VfioPci, 0, [new RegionSpec(0, 16 * MiB, BarType.Mem64, true)]));
        k.AddVm(KvmVm.Create("vm1"));
        k.MmapDevice("gpu0", 0, 0, 16 * MiB, true, Prot.Read | Prot.Write, null, out var bar);
        k.MmapRam(2 * MiB, null, out var ram);
        k.SetMemslot("vm1", 0, MemslotFlags.None, 0x4000_0000, 2 * MiB, ram);
        k.SetMemslot("vm1", 1, MemslotFlags.None, 0x80_0000_0000, 16 * MiB, bar);
        k.Access("vm1", 0, 0x80_0000_1000, AccessOp.Read);
        k.Access("vm1", 1, 0x4000_0000, AccessOp.Write);
        k.Mprotect(ram, 2 * MiB, Prot.Read);
        k.SetDeviceMemory("gpu0", false);
        k.SetPowerState("gpu0", PciPowerState.D3Hot);
        k.ResetDevice("gpu0");
        k.Munmap(bar, MiB);
        k.DeleteMemslot("vm1", 1);
        k.VgicV2MapResources("vm1", 0x801_0000);
        var events = k.Log.Select(e => e.Event).ToList();
        events.Add(new UserPtesPopulatedBatch([.. events.OfType<UserPtesPopulated>().Select(p => new PteRange(p.Start, p.End))]));
        events.Add(new Stage2FaultsResolved([.. events.OfType<Stage2FaultResolved>().Select(f => f.Decision)]));
        events.Add(new Domain.Invariants.InvariantViolationDetected(3, "r/kvm-vm1", "I5", "example"));
        return events;
    }

    [Fact]
    public void Every_domain_event_type_has_an_alias_and_the_sample_covers_them_all()
    {
        var types = typeof(IDomainEvent).Assembly.GetTypes().Where(t => typeof(IDomainEvent).IsAssignableFrom(t) && !t.IsInterface).ToArray();
        Assert.All(types, t => Assert.Matches("^[a-z0-9_]+$", DomainEventSerializer.AliasOf(t)));
        var sampled = SampleEvents().Select(e => e.GetType()).ToHashSet();
        Assert.All(types, t => Assert.Contains(t, sampled));
    }

    /// <summary>A VM's snapshot holds its KVM_CAP_ARM_NISV_TO_USER only when set: a VM without it saves the
    /// JSON it saved before the field was added, and a snapshot saved then (no "nisvToUser") recovers as a
    /// VM without it, where a missing field is otherwise refused.</summary>
    [Fact]
    public void A_VMs_snapshot_keeps_NISV_TO_USER_and_one_saved_before_it_still_reads()
    {
        var k = new SyncKernel(KernelPolicy.Of("6.9"));
        k.AddVm(KvmVm.Create("vm1", hasMte: false, ipaBits: 36, nisvToUser: true));
        k.MmapRam(2 * MiB, null, out var ram);
        k.SetMemslot("vm1", 0, MemslotFlags.None, 0x4000_0000, 2 * MiB, ram);
        k.Access("vm1", 0, 0x4000_0000, AccessOp.Write);
        var vm = k.Vm("vm1");
        Assert.NotNull(vm.Stage2.Lookup(0x4000_0000));
        var (manifest, bytes) = DomainEventSerializer.ToBinary(vm);
        var json = System.Text.Encoding.UTF8.GetString(bytes);
        Assert.EndsWith(",\"nisvToUser\":true}", json);
        var back = (KvmVm)DomainEventSerializer.FromBinary(manifest, bytes);
        Assert.Equal((true, 36, vm.MmuInvalidateSeq), (back.NisvToUser, back.IpaBits, back.MmuInvalidateSeq));
        Assert.True(back.Stage2.Equals(vm.Stage2));
        Assert.Equal(bytes, DomainEventSerializer.ToBinary(back).Bytes);
        Assert.DoesNotContain("ioRemaps", json); // KVM mapped nothing itself: not written

        // KVM's own mapping of the GICv2 CPU interface is kept, and with it which leaves are KVM's.
        Assert.Equal(Errno.None, k.VgicV2MapResources("vm1", 0x801_0000));
        var (_, withGic) = DomainEventSerializer.ToBinary(k.Vm("vm1"));
        Assert.Contains("\"ioRemaps\":[{\"gpa\":\"0x8010000\",\"end\":\"0x8012000\",\"pa\":\"0x2c060000\"}]", System.Text.Encoding.UTF8.GetString(withGic));
        var gic = (KvmVm)DomainEventSerializer.FromBinary(manifest, withGic);
        Assert.Equal(new IoRemap(0x801_0000, 0x801_2000, PhysMap.GicvBase), gic.IoRemapOf(0x801_1fff));
        Assert.Null(gic.IoRemapOf(0x801_2000));
        Assert.Equal(withGic, DomainEventSerializer.ToBinary(gic).Bytes);

        var (_, without) = DomainEventSerializer.ToBinary(vm with { NisvToUser = false });
        var withoutJson = System.Text.Encoding.UTF8.GetString(without);
        Assert.Equal(json.Replace(",\"nisvToUser\":true", ""), withoutJson);
        foreach (var saved in new[] { withoutJson, withoutJson[..^1] + ",\"nisvToUser\":false}" })
        {
            var read = (KvmVm)DomainEventSerializer.FromBinary(manifest, System.Text.Encoding.UTF8.GetBytes(saved));
            Assert.False(read.NisvToUser);
            Assert.True(read.Stage2.Equals(vm.Stage2));
        }
        // Any other field missing is refused as before.
        var noIpaBits = withoutJson.Replace(",\"ipaBits\":36", "");
        Assert.NotEqual(withoutJson, noIpaBits);
        Assert.ThrowsAny<JsonException>(() => DomainEventSerializer.FromBinary(manifest, System.Text.Encoding.UTF8.GetBytes(noIpaBits)));
    }

    [Fact]
    public void Every_event_round_trips_through_JSON()
    {
        foreach (var e in SampleEvents())
        {
            var alias = DomainEventSerializer.AliasOf(e.GetType());
            var json = DomainEventSerializer.ToJson(e);
            var back = DomainEventSerializer.FromJson(alias, DomainEventSerializer.VersionOf(alias), json);
            Assert.Equal(e.GetType(), back.GetType());
            Assert.Equal(json.GetRawText(), DomainEventSerializer.ToJson(back).GetRawText());
        }
    }

    [Fact]
    public void A_decision_reads_back_equal_and_still_verifies()
    {
        var d = SampleEvents().OfType<Stage2FaultResolved>().First();
        var back = (Stage2FaultResolved)DomainEventSerializer.FromJson("stage2_fault_resolved", 1, DomainEventSerializer.ToJson(d));
        Assert.Equal(d.Decision, back.Decision);
        Assert.True(back.Decision.Verifies());
    }

    [Fact]
    public void Addresses_are_hex_strings_and_flags_are_VM_names()
    {
        var mapped = SampleEvents().OfType<VmaMapped>().First();
        var json = DomainEventSerializer.ToJson(mapped).GetRawText();
        Assert.Contains("\"start\":\"0x7eff", json);
        Assert.Contains("\"VM_ALLOW_ANY_UNCACHED\"", json);
        Assert.Contains("\"s1\":\"MT_DEVICE_nGnRnE\"", json);
    }

    [Fact]
    public void The_alias_is_stored_not_the_CSharp_type_name()
    {
        // Renaming a C# type changes Type.Name, never the alias the registry maps it to.
        Assert.Equal("stage2_fault_resolved", DomainEventSerializer.AliasOf(typeof(Stage2FaultResolved)));
        Assert.DoesNotContain("Stage2FaultResolved", DomainEventSerializer.ToJson(SampleEvents().OfType<Stage2FaultResolved>().First()).GetRawText());
    }

    [Fact]
    public void A_schema_1_memslot_set_without_vmas_still_loads()
    {
        const string v1 = """{"vm":"vm1","slot":{"id":1,"baseGpa":"0x8000000000","size":"0x1000000","userspaceAddr":"0x7f0000000000","flags":"None"},"change":"Create"}""";
        var e = (MemslotSet)DomainEventSerializer.FromJson("memslot_set", 1, JsonDocument.Parse(v1).RootElement);
        Assert.Equal(0x80_0000_0000UL, e.Slot.BaseGpa);
        Assert.Empty(e.Vmas);
        Assert.Equal(2, DomainEventSerializer.VersionOf("memslot_set"));
    }

    [Fact]
    public void A_newer_schema_or_unknown_alias_is_refused()
    {
        var json = JsonDocument.Parse("{}").RootElement;
        Assert.Throws<JsonException>(() => DomainEventSerializer.FromJson("memslot_set", 3, json));
        Assert.Throws<JsonException>(() => DomainEventSerializer.FromJson("no_such_event", 1, json));
    }
}
