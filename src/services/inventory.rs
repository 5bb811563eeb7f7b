//! The staff inventory view: each product's stock, what is held by
//! checkouts in progress, what was sold, and whether it runs low. Figures
//! come from the index (units on hand, published by each InventoryActor),
//! the stored level (units received) and, for the products on the page, the
//! actor itself (units reserved, which live only in its memory).

use super::{Shop, ShopError};
use crate::actors::inventory::Level;
use crate::actors::registry::ask;
use crate::catalog::index::{Query, SortOrder};
use crate::domain::ProductId;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InventoryRow {
    pub product_id: u64,
    pub name: String,
    pub slug: String,
    pub is_active: bool,
    /// Units on the shelf.
    pub stock: i64,
    /// Units held by checkouts in progress.
    pub reserved: i64,
    /// Units in orders that are not cancelled (received - on hand).
    pub sold: i64,
    /// Units ever received (initial stock, restocks, corrections).
    pub received: i64,
    /// Fewer units on hand than the shop's low-stock threshold.
    pub low_stock: bool,
}

/// Filters of the inventory list.
#[derive(Debug, Clone, Default)]
pub struct InventoryFilter {
    pub search: Option<String>,
    /// Only products under the threshold.
    pub low_stock: bool,
}

impl Shop {
    /// Matching products by name (inactive ones too), the page asked for,
    /// and how many match.
    pub async fn inventory(
        &self,
        filter: &InventoryFilter,
        threshold: i64,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<InventoryRow>), ShopError> {
        let snapshot = self.catalog.index().snapshot();
        let (_, docs) = snapshot.query(&Query {
            search: filter.search.clone(),
            include_inactive: true,
            ordering: Some(SortOrder::Name),
            limit: usize::MAX,
            ..Query::default()
        });
        let matching: Vec<_> = docs
            .into_iter()
            .filter(|d| !filter.low_stock || d.on_hand() < threshold)
            .collect();
        let mut rows = Vec::new();
        for doc in matching.iter().skip(offset).take(limit) {
            rows.push(self.inventory_row(doc.product.id, threshold).await?);
        }
        Ok((matching.len(), rows))
    }

    pub async fn inventory_row(
        &self,
        product: ProductId,
        threshold: i64,
    ) -> Result<InventoryRow, ShopError> {
        let record = self
            .store
            .product(product)?
            .ok_or(ShopError::NotFound("product"))?;
        let (_, level) = ask(&self.inventory, product.0, Level).await?;
        let (level, reserved) = level?;
        Ok(InventoryRow {
            product_id: product.0,
            name: record.name,
            slug: record.slug,
            is_active: record.is_active,
            stock: level.on_hand,
            reserved,
            sold: level.received - level.on_hand,
            received: level.received,
            low_stock: level.on_hand < threshold,
        })
    }
}
