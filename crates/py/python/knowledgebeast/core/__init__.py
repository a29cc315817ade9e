from .cache import LRUCache
from .config import KnowledgeBeastConfig
from .engine import KnowledgeBase
from .heartbeat import KnowledgeBaseHeartbeat

__all__ = ["KnowledgeBase", "KnowledgeBeastConfig", "KnowledgeBaseHeartbeat", "LRUCache"]
