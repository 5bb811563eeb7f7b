//! Order reads and status changes: owners see and cancel their own orders,
//! staff see all and move them along the state machine. A cancellation
//! returns stock in the same transaction as the status change, then tells
//! the products' InventoryActors to reload.

use super::{Shop, ShopError};
use crate::actors::hub::{Event, Publish};
use crate::actors::inventory::{Adjust, SetOnHand};
use crate::actors::registry::ask;
use crate::auth::Identity;
use crate::domain::inventory::StockLevel;
use crate::domain::ledger::StockChange;
use crate::domain::money::format_minor;
use crate::domain::order::{Order, OrderStatus, Requester};
use crate::domain::time::rfc3339;
use crate::domain::{OrderId, ProductId, UserId};
use crate::store::orders::TransitionFailure;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderItemView {
    pub product_id: u64,
    pub product_name: String,
    pub quantity: i64,
    /// Unit price when the order was placed (decimal string).
    pub price_at_purchase: String,
    pub line_total: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AddressView {
    pub name: String,
    pub address: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
    pub phone: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    pub id: u64,
    pub user: u64,
    /// pending, paid, shipped, delivered or cancelled.
    pub status: String,
    /// unpaid, paid, failed or refunded.
    pub payment_status: String,
    pub total_price: String,
    pub currency: String,
    pub shipping_address: AddressView,
    pub items: Vec<OrderItemView>,
    pub created_at: String,
    pub updated_at: String,
}

impl OrderView {
    pub fn new(order: &Order) -> Self {
        let currency = order.currency;
        Self {
            id: order.id.0,
            user: order.user_id.0,
            status: order.status.as_str().into(),
            payment_status: order.payment_status.as_str().into(),
            total_price: format_minor(order.total, currency),
            currency: currency.code().into(),
            shipping_address: AddressView {
                name: order.shipping_address.name.clone(),
                address: order.shipping_address.address.clone(),
                city: order.shipping_address.city.clone(),
                postal_code: order.shipping_address.postal_code.clone(),
                country: order.shipping_address.country.clone(),
                phone: order.shipping_address.phone.clone(),
            },
            items: order
                .items
                .iter()
                .map(|item| OrderItemView {
                    product_id: item.product_id.0,
                    product_name: item.product_name.clone(),
                    quantity: item.quantity,
                    price_at_purchase: format_minor(item.price_at_purchase, currency),
                    line_total: format_minor(
                        item.price_at_purchase.saturating_mul(item.quantity),
                        currency,
                    ),
                })
                .collect(),
            created_at: rfc3339(order.created_at),
            updated_at: rfc3339(order.updated_at),
        }
    }
}

/// Staff filters for the order list.
#[derive(Debug, Default, Clone)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub user: Option<UserId>,
    /// Unix seconds, inclusive.
    pub from: Option<i64>,
    /// Unix seconds, exclusive.
    pub to: Option<i64>,
}

impl Shop {
    /// An order its owner or staff may see; anyone else gets "not found"
    /// (invariant 6: no hint that it exists).
    pub fn visible_order(&self, caller: &Identity, id: OrderId) -> Result<Order, ShopError> {
        match self.store.order(id)? {
            Some(order) if order.user_id == caller.user.id || caller.user.is_staff => Ok(order),
            _ => Err(ShopError::NotFound("order")),
        }
    }

    pub fn orders_of(
        &self,
        user: UserId,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<Order>), ShopError> {
        Ok(self.store.orders_of_user(user, offset, limit)?)
    }

    pub fn orders_for_staff(&self, filter: &OrderFilter) -> Result<Vec<Order>, ShopError> {
        Ok(self.store.orders_matching(|o| {
            filter.status.is_none_or(|s| o.status == s)
                && filter.user.is_none_or(|u| o.user_id == u)
                && filter.from.is_none_or(|f| o.created_at >= f)
                && filter.to.is_none_or(|t| o.created_at < t)
        })?)
    }

    /// Cancels (owner: pending only; staff: pending or paid) or moves an
    /// order along; the owner of another's order gets "not found".
    pub async fn change_order_status(
        &self,
        caller: &Identity,
        id: OrderId,
        to: OrderStatus,
    ) -> Result<Order, ShopError> {
        let order = self.visible_order(caller, id)?;
        let requester = if caller.user.is_staff {
            Requester::Staff
        } else {
            Requester::Owner
        };
        let transition = self
            .store
            .transition_order(order.id, to, requester)
            .map_err(|e| match e {
                TransitionFailure::NotFound => ShopError::NotFound("order"),
                TransitionFailure::Rejected(rule) => ShopError::Transition(rule),
                TransitionFailure::Store(store) => ShopError::Store(store),
            })?;
        let after = transition.after;
        self.tell_returned(&transition.returned).await;
        self.store.durable().await?;
        self.publish_order_updated(&after);
        Ok(after)
    }

    pub fn publish_order_updated(&self, order: &Order) {
        self.hub.do_send(Publish(Event::OrderUpdated {
            owner: order.user_id,
            payload: serde_json::to_value(OrderView::new(order)).unwrap_or_default(),
        }));
    }

    /// Adds received units through the product's InventoryActor.
    pub async fn restock(
        &self,
        product_id: ProductId,
        quantity: i64,
        change: StockChange,
    ) -> Result<StockLevel, ShopError> {
        self.adjust_stock(product_id, quantity, quantity, change)
            .await
    }

    /// Sets units on hand (a staff stock count or a catalog edit of `stock`).
    pub async fn set_stock(
        &self,
        product_id: ProductId,
        on_hand: i64,
        change: StockChange,
    ) -> Result<StockLevel, ShopError> {
        let (_, level) = ask(&self.inventory, product_id.0, SetOnHand(on_hand, change)).await?;
        let level = level?;
        self.store.durable().await?;
        Ok(level)
    }

    /// Every stock change outside checkout and cancellation goes through here,
    /// so the product's InventoryActor stays the only writer.
    pub async fn adjust_stock(
        &self,
        product_id: ProductId,
        delta_on_hand: i64,
        delta_received: i64,
        change: StockChange,
    ) -> Result<StockLevel, ShopError> {
        let (_, level) = ask(
            &self.inventory,
            product_id.0,
            Adjust {
                delta_on_hand,
                delta_received,
                change,
            },
        )
        .await?;
        let level = level?;
        self.store.durable().await?;
        Ok(level)
    }
}
