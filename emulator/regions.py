"""Regions as data: which Azure regions have availability zones (rule C9).

Today's Azure documentation ("Azure regions list" / "Availability zone service and regional support"
on Microsoft Learn) lists the regions below with availability zones. A cluster create that asks for
zones elsewhere is refused; one that leaves `isAvailabilityZonesEnabled` out gets zones exactly where
the region has them. Names are the programmatic (normalised) region names.
"""

from __future__ import annotations

ZONE_REGIONS: frozenset[str] = frozenset(
    {
        # Americas
        "brazilsouth",
        "canadacentral",
        "centralus",
        "chilecentral",
        "eastus",
        "eastus2",
        "mexicocentral",
        "southcentralus",
        "usgovvirginia",
        "westus2",
        "westus3",
        # Europe
        "austriaeast",
        "belgiumcentral",
        "francecentral",
        "germanywestcentral",
        "italynorth",
        "northeurope",
        "norwayeast",
        "polandcentral",
        "spaincentral",
        "swedencentral",
        "switzerlandnorth",
        "uksouth",
        "westeurope",
        # Middle East and Africa
        "israelcentral",
        "qatarcentral",
        "southafricanorth",
        "uaenorth",
        # Asia Pacific
        "australiaeast",
        "centralindia",
        "eastasia",
        "indonesiacentral",
        "japaneast",
        "japanwest",
        "koreacentral",
        "malaysiawest",
        "newzealandnorth",
        "southeastasia",
    }
)


def has_zones(region: str) -> bool:
    """True when the (normalised) region offers availability zones."""
    return region in ZONE_REGIONS
